"""cs336lm.training.batch_probe: the doubling-then-bisection search on planted limits, a real CPU probe against a
planted
memory cap (trials in real forked processes), a clean error when batch 1 does not fit, and the CUDA path."""

from __future__ import annotations

import pytest
import torch

from cs336lm.training import batch_probe
from cs336lm.training.batch_probe import Trial, _ForkServer, _InProcessTrials, largest_batch_size, search_largest
from cs336lm.training.step import BatchTooLargeError
from tests.helpers import wide_logits_config

MiB = 2**20


def planted(limit: int):
    def trial(batch_size: int) -> Trial:
        return Trial(batch_size, batch_size <= limit, batch_size)

    return trial


@pytest.mark.parametrize("max_batch_size", [1, 7, 16, 100])
def test_search_finds_every_planted_limit_and_stops_at_the_maximum(max_batch_size):
    for limit in range(1, max_batch_size + 3):
        best, trials = search_largest(planted(limit), max_batch_size)
        tried = [t.batch_size for t in trials]
        assert best == min(limit, max_batch_size), (limit, tried)
        assert max(tried) <= max_batch_size and len(set(tried)) == len(tried)
        if limit < max_batch_size:
            assert limit + 1 in tried, f"the boundary {limit} | {limit + 1} was not located: {tried}"
        assert len(trials) <= 2 * max_batch_size.bit_length() + 1


def test_search_doubles_then_bisects():
    best, trials = search_largest(planted(5), 16)
    assert best == 5 and [t.batch_size for t in trials] == [1, 2, 4, 8, 6, 5]
    best, trials = search_largest(planted(0), 16)
    assert best == 0 and [t.batch_size for t in trials] == [1]


@pytest.mark.slow
def test_cpu_probe_finds_a_planted_memory_cap():
    cfg = wide_logits_config()
    with _ForkServer() as server:
        peak5, peak6 = (server.trial(cfg, b, 1, cap=2**50).peak_bytes for b in (5, 6))
    assert peak6 - peak5 > 4 * MiB, "one more sequence should add ~9 MiB of logits and their gradients"
    cap = (peak5 + peak6) // 2
    result = largest_batch_size(cfg, device="cpu", memory_cap_bytes=cap, max_batch_size=16, steps=1)
    assert result.batch_size == 5 and result.memory_cap_bytes == cap
    assert [(t.batch_size, t.fits) for t in result.trials] == [
        (1, True), (2, True), (4, True), (8, False), (6, False), (5, True)]
    for t in result.trials:
        assert t.fits == (t.peak_bytes <= cap), t
        assert (t.error is None) == t.fits
    peaks = [t.peak_bytes for t in sorted(result.trials, key=lambda t: t.batch_size)]
    assert peaks == sorted(peaks), "peak memory grows with the batch"
    assert result.to_dict()["trials"][0]["batch_size"] == 1


def test_a_cap_below_batch_one_is_a_clean_error():
    with pytest.raises(BatchTooLargeError, match=r"even a batch of 1 × 128 tokens does not fit under the cap of "
                                                 r"0\.01 GiB .*its peak was .*raise the memory cap"):
        largest_batch_size(wide_logits_config(), memory_cap_bytes=10 * MiB, max_batch_size=4, steps=1)


def test_bad_arguments_name_what_to_change():
    with pytest.raises(ValueError, match="needs memory_cap_bytes"):
        largest_batch_size(wide_logits_config(), device="cpu")
    with pytest.raises(ValueError, match="max_batch_size = 0"):
        largest_batch_size(wide_logits_config(), memory_cap_bytes=2**30, max_batch_size=0)


def test_a_failing_trial_reports_its_traceback():
    bad = wide_logits_config()
    object.__setattr__(bad.model, "d_model", 15)  # not divisible by num_heads: the model cannot be built
    with pytest.raises(RuntimeError, match="(?s)trial at batch 1 failed.*not divisible by model.num_heads"):
        largest_batch_size(bad, memory_cap_bytes=2**40, max_batch_size=2, steps=1)


def test_in_process_trials_catch_out_of_memory_and_keep_one_model(monkeypatch):
    """The accelerator path's logic on the CPU, with out-of-memory errors planted above batch 5."""
    real_train_steps, steps_seen = batch_probe._train_steps, []

    def train_steps(step, cfg, batch_size, steps, device):
        steps_seen.append(step)
        if batch_size <= 5:
            return real_train_steps(step, cfg, batch_size, steps, device)
        x = torch.randint(0, cfg.model.vocab_size, (batch_size, cfg.model.context_length))
        step.loss(x, x).backward()  # gradients are there when the optimizer step runs out of memory
        raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {batch_size} GiB (planted)")

    monkeypatch.setattr(batch_probe, "_train_steps", train_steps)
    trials = _InProcessTrials(wide_logits_config(**{"model.vocab_size": 64}), torch.device("cpu"), steps=1)
    best, tried = search_largest(trials, 16)
    assert best == 5 and [t.batch_size for t in tried] == [1, 2, 4, 8, 6, 5]
    assert tried[3].error == "CUDA out of memory. Tried to allocate 8 GiB (planted)" and not tried[3].fits
    assert len(set(map(id, steps_seen))) == 1, "every trial reuses one model, optimizer and compiled step"
    assert not trials(7).fits
    assert all(p.grad is None for p in trials.step.params), "a failed trial's gradients are dropped"
    trials.close()
    assert trials.step is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_probe_stops_at_the_cap_and_frees_memory_between_trials():
    cfg = wide_logits_config(**{"train.device": "cuda"})
    result = largest_batch_size(cfg, memory_cap_bytes=512 * MiB, max_batch_size=4096, steps=1)
    assert 1 <= result.batch_size < 4096
    assert any(not t.fits and "out of memory" in t.error.lower() for t in result.trials)
    assert all(t.peak_bytes <= 513 * MiB for t in result.trials if t.fits)
    assert torch.cuda.memory_allocated() < 16 * MiB, "the model, optimizer and trials' tensors were freed"
