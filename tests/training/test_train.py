"""cs336lm.training.train on a tiny model and a synthetic corpus: loss falls, outputs and their keys, evaluation every N
tokens, the final score on the whole validation split, determinism, divergence, the wall-clock budget and its
time-based schedule, bad input, and the course TinyStories model stepping on CPU within memory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cs336lm.training.schedule as schedule
import cs336lm.training.train as T
from cs336lm.lm.model import TransformerLM
from cs336lm.lm.optim import AdamW
from cs336lm.training.checkpoint import CheckpointError, load_model, save_checkpoint
from cs336lm.training.metrics import KEYS, read_metrics
from cs336lm.training.progress import PROGRESS_CHECKPOINT
from cs336lm.training.summary import read_summary
from cs336lm.training.train import train
from tests.helpers import REPO_ROOT, TIMING_KEYS, VOCAB, outputs, peak_rss_mb, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

def test_loss_falls_and_outputs_have_their_keys(tmp_path, corpus):
    cfg = tiny_config()
    run = tmp_path / "run"
    summary = train(cfg, *corpus, **outputs(run), provenance={
        "dataset": {"name": "markov", "source": "make_corpus"},
        "selected": {"optim.lr_max": {"value": 1e-2, "source": "selections/lr_sweep.json"}}})

    records = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, *range(10, 121, 10)]
    for r in records:
        assert set(r) - {"val_loss"} == set(KEYS)
    assert [r["step"] for r in records if "val_loss" in r] == [40, 80, 120]
    assert records[-1]["train_loss"] < 0.5 * records[0]["train_loss"]
    assert records[-1]["val_loss"] < 1.6  # from ln 32 ≈ 3.47 towards the chain's entropy ln 3 ≈ 1.10
    assert all(b["elapsed_s"] >= a["elapsed_s"] for a, b in zip(records, records[1:], strict=False))

    assert read_summary(run / "summary.json") == summary
    assert summary.status == "ok" and summary.stopped_early is None and summary.divergence is None
    assert summary.steps == summary.num_iterations == cfg.num_iterations == 120
    assert summary.tokens == 120 * 8 * 16
    assert summary.final_val_tokens == (2000 - 1) // 16 * 16, "the whole validation split, in windows of 16"
    assert summary.final_val_loss == records[-1]["val_loss"], "the curve ends on the final validation loss"
    assert summary.best_val_loss == min(r["val_loss"] for r in records if "val_loss" in r)
    assert summary.config == cfg.to_dict() and summary.mfu is None
    assert summary.implementation.requested == "auto" and summary.implementation.dtype == "float32"
    assert summary.dataset.name == "markov" and summary.selected["optim.lr_max"].value == 1e-2
    assert summary.wall_time_s > 0 and summary.eval_time_s > 0
    assert summary.tokens_per_s == pytest.approx(summary.tokens / summary.wall_time_s)
    assert records[-1]["elapsed_s"] <= summary.wall_time_s, "metrics record training time, evaluation excluded"
    assert summary.no_learning_loss == pytest.approx(np.log(VOCAB), abs=0.05), "the chain's tokens are uniform"
    assert set(summary.code) == {"git_sha", "git_dirty"} and summary.versions["torch"] == torch.__version__
    assert not (run / "progress").exists(), "progress files are removed once the outputs are in place"


def test_final_validation_scores_every_window_of_the_split_once(tmp_path, corpus):
    run = tmp_path / "run"
    summary = train(tiny_config(), *corpus, **outputs(run))
    model, config = load_model(run / "model.pt")
    valid = torch.from_numpy(np.load(corpus[1]).astype(np.int64))
    windows = (len(valid) - 1) // config.context_length
    x = valid[: windows * config.context_length].view(windows, -1)
    y = valid[1 : windows * config.context_length + 1].view(windows, -1)
    with torch.no_grad():
        expected = F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
    assert summary.final_val_tokens == y.numel()
    assert summary.final_val_loss == pytest.approx(expected, rel=1e-5)

    limited = train(tiny_config(**{"train.final_eval_tokens": 100}), *corpus, **outputs(tmp_path / "limited"))
    assert limited.final_val_tokens == 7 * 16, "the windows covering the first 100 tokens"


def test_evaluation_every_n_tokens_gives_equal_points_across_batch_sizes(tmp_path, corpus):
    points = {}
    for batch_size in (4, 6, 16):
        cfg = tiny_config(**{"train.batch_size": batch_size, "train.token_budget": 16 * 16 * 60,
                             "train.eval_every_tokens": 16 * 16 * 10, "train.log_interval": 1000})
        train(cfg, *corpus, **outputs(tmp_path / str(batch_size)))
        records = read_metrics(tmp_path / str(batch_size) / "metrics.jsonl")
        points[batch_size] = [r["tokens"] for r in records if "val_loss" in r]
    assert [len(p) for p in points.values()] == [6, 6, 6]
    # Each evaluation is at the first step whose tokens reach a multiple of 2,560.
    assert points[4] == [2560 * k for k in range(1, 7)]
    assert points[6] == [2592, 5184, 7680, 10272, 12864, 15360]


def test_same_seed_gives_identical_metrics_and_another_seed_does_not(tmp_path, corpus):
    def lines(name: str, seed: int) -> list[dict]:
        train(tiny_config(**{"train.seed": seed}), *corpus, **outputs(tmp_path / name))
        return [{k: v for k, v in r.items() if k not in TIMING_KEYS}
                for r in read_metrics(tmp_path / name / "metrics.jsonl")]

    first, again, other = lines("a", 0), lines("b", 0), lines("c", 1)
    assert first == again, "the same config and seed give the same metrics, bit for bit"
    assert [r["step"] for r in other] == [r["step"] for r in first]
    assert all(a["train_loss"] != b["train_loss"] for a, b in zip(first, other, strict=True))


def test_absurd_lr_ends_diverged_with_outputs(tmp_path, corpus):
    cfg = tiny_config(**{"optim.lr_max": 1e4, "optim.lr_min": 1e4, "optim.warmup_fraction": 0.0,
                         "optim.grad_clip": 0.0, "train.log_interval": 1})
    run = tmp_path / "run"
    summary = train(cfg, *corpus, **outputs(run))
    assert summary.status == "diverged" and summary.stopped_early == "diverged"
    assert summary.steps < cfg.num_iterations and "training loss" in summary.divergence
    assert all(p.exists() for p in outputs(run).values())
    records = read_metrics(run / "metrics.jsonl")
    assert records[-1]["step"] == summary.steps
    last = records[-1]["train_loss"]
    assert last is None or last > 2 * records[0]["train_loss"]  # null in JSON when NaN


def test_run_that_ends_no_better_than_token_frequencies_is_diverged(tmp_path, corpus):
    # A rate too small to learn anything in 120 steps leaves the loss at the uniform chain's unigram entropy.
    cfg = tiny_config(**{"optim.lr_max": 1e-7, "optim.lr_min": 1e-7})
    summary = train(cfg, *corpus, **outputs(tmp_path / "run"))
    assert summary.status == "diverged" and summary.stopped_early is None
    assert summary.steps == cfg.num_iterations and "unigram entropy" in summary.divergence


def test_a_loss_that_rose_above_its_start_and_recovered_ends_unstable(tmp_path, corpus, monkeypatch):
    # Steps 41-50 report a planted loss of 4.0, above the first logged value (about ln 32 = 3.47) but within the
    # divergence factor; training goes on and recovers, and the run is unstable rather than stable.
    step, seen = T.TrainStep.__call__, []

    def planted(*args, **kwargs):
        loss, grad_norm = step(*args, **kwargs)
        seen.append(None)
        return (loss * 0 + 4.0 if 41 <= len(seen) <= 50 else loss), grad_norm

    monkeypatch.setattr(T.TrainStep, "__call__", planted)
    summary = train(tiny_config(), *corpus, **outputs(tmp_path / "run"))
    assert summary.status == "unstable" and summary.divergence is None and summary.stopped_early is None
    assert "the training loss rose to 4 (logged value 6), above its first value" in summary.instability
    assert summary.steps == summary.num_iterations and summary.final_val_loss is not None


class StepClock:
    """A training clock driven by hand: each training step takes `step_seconds(now)` (default 1/64 s) and each
    evaluation 1/4 s."""

    def __init__(self, monkeypatch, step_seconds=lambda now: 1 / 64):
        self.now = 0.0
        monkeypatch.setattr(schedule, "_now", lambda: self.now)
        step, sample_loss, split_loss = T.TrainStep.__call__, T.sample_loss, T.split_loss
        monkeypatch.setattr(T.TrainStep, "__call__",
                            lambda *a, **k: (self.advance(step_seconds(self.now)), step(*a, **k))[1])
        monkeypatch.setattr(T, "sample_loss", lambda *a: (self.advance(1 / 4), sample_loss(*a))[1])
        monkeypatch.setattr(T, "split_loss", lambda *a: (self.advance(1 / 4), split_loss(*a))[1])

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_the_whole_job_ends_inside_its_wall_clock_budget_final_validation_included(tmp_path, corpus, monkeypatch):
    StepClock(monkeypatch)
    sample_tokens = 2 * 16 * 16  # eval_batches × eval_batch_size × context: the final one scores as many
    cfg = tiny_config(**{"train.token_budget": 8 * 16 * 100_000, "train.wall_clock_budget_s": 2.0,
                         "optim.warmup_fraction": 0.0625, "train.eval_every_tokens": 8 * 16 * 32,
                         "train.eval_batch_size": 16, "train.final_eval_tokens": sample_tokens,
                         "train.log_interval": 8, "train.checkpoint_interval": 10**6})
    summary = train(cfg, *corpus, **outputs(tmp_path / "run"))
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    job, step_s, eval_s = summary.job, 1 / 64, 1 / 4
    # Before its first step the job times an evaluation of the sample (after one to warm up): 2 × 1/4 s. Training
    # stops once another step would leave less than the final validation's measured time (× the margin); the
    # final validation (1/4 s) then ends the job just inside the budget.
    reserve = schedule.RESERVE_MARGIN * eval_s
    assert summary.stopped_early == "wall_clock" and summary.status == "ok"
    assert 2.0 - reserve - step_s + eval_s < job.total_s <= 2.0 - reserve + eval_s <= 2.0
    assert job.budget_s == 2.0 and job.startup_s == 0.0 and job.checkpoint_s == 0.0 and job.write_s == 0.0
    assert job.train_s == summary.wall_time_s == summary.steps * step_s
    assert job.eval_s == summary.eval_time_s == (2 + summary.steps // 32 + 1) * eval_s
    assert job.total_s == job.train_s + job.eval_s, "nothing else took (fake) time"
    assert records[-1]["val_loss"] == summary.final_val_loss and records[-1]["job_s"] == job.total_s
    o = cfg.optim
    assert records[0]["lr"] < 1e-3 * o.lr_max, "the first step, not yet timed, runs at the start of the warm-up"
    assert records[-1]["lr"] < o.lr_min + 1e-3 * (o.lr_max - o.lr_min), "annealed as the training time runs out"
    lr = [r["lr"] for r in records]
    peak = lr.index(max(lr))
    assert max(lr) == pytest.approx(o.lr_max, rel=1e-2), "the warm-up reaches the peak (to the logged steps)"
    assert all(a >= b for a, b in zip(lr[peak:], lr[peak + 1:], strict=False)), "then it only falls"


def test_wall_clock_budget_stops_a_run_that_slows_down_with_lr_at_its_minimum(tmp_path, corpus, monkeypatch):
    # Steps take 1/64 s, then 1/16 s from half the budget on (the machine got busy): the run stops while the final
    # validation still fits, evaluates its last step inside the budget, and has annealed by then.
    clock = StepClock(monkeypatch, step_seconds=lambda now: 1 / 64 if now < 1.0 else 1 / 16)
    cfg = tiny_config(**{"train.token_budget": 8 * 16 * 100_000, "train.wall_clock_budget_s": 2.0,
                         "train.eval_every_tokens": 8 * 16 * 50, "train.log_interval": 5})
    summary = train(cfg, *corpus, **outputs(tmp_path / "run"))
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert summary.status == "ok" and summary.stopped_early == "wall_clock"
    assert summary.job.total_s <= 2.0, "the whole job, final validation included, ends inside the budget"
    assert summary.wall_time_s > 1.0, "it trained on past the slowdown"
    assert summary.steps < 128, "fewer steps than at full speed"
    assert clock.now > summary.wall_time_s, "evaluation comes on top of training time"
    assert summary.final_val_loss is not None and "val_loss" in records[-1], "the last step is evaluated"
    o = cfg.optim
    assert records[-1]["lr"] < o.lr_min + 0.1 * (o.lr_max - o.lr_min), "annealed when the time ran out"


def test_token_ids_beyond_vocab_are_an_error_and_nothing_is_overwritten(tmp_path, corpus):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.pt").write_bytes(b"earlier result")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([1, 2, VOCAB + 5] * 100, dtype=np.uint16))
    with pytest.raises(ValueError, match=r"bad\.npy.*token id 37 .* vocab_size = 32"):
        train(tiny_config(), bad, corpus[1], **outputs(run))
    assert (run / "model.pt").read_bytes() == b"earlier result"


def test_token_file_shorter_than_one_context_is_an_error(tmp_path, corpus):
    short = tmp_path / "short.npy"
    np.save(short, np.arange(10, dtype=np.uint16))
    with pytest.raises(ValueError, match=r"short\.npy: 10 tokens are too few"):
        train(tiny_config(), corpus[0], short, **outputs(tmp_path / "run"))


def test_corrupt_progress_checkpoint_is_an_error_and_kept(tmp_path, corpus):
    progress = tmp_path / "run" / "progress"
    progress.mkdir(parents=True)
    cut_off = b"PK\x03\x04 and then nothing"  # the start of a torch.save zip archive
    (progress / PROGRESS_CHECKPOINT).write_bytes(cut_off)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        train(tiny_config(), *corpus, **outputs(tmp_path / "run"))
    assert (progress / PROGRESS_CHECKPOINT).read_bytes() == cut_off


def test_progress_of_another_config_is_set_aside(tmp_path, corpus, caplog):
    old = tiny_config(**{"optim.lr_max": 5e-3})
    model = TransformerLM(old.model)
    progress = tmp_path / "run" / "progress"
    progress.mkdir(parents=True)
    save_checkpoint(model, AdamW(model.parameters()), 20, progress / PROGRESS_CHECKPOINT, config=old.to_dict())
    summary = train(tiny_config(), *corpus, **outputs(tmp_path / "run"))
    assert summary.steps == 120 and read_metrics(tmp_path / "run" / "metrics.jsonl")[0]["step"] == 1
    assert (progress / (PROGRESS_CHECKPOINT + ".stale")).exists()
    assert "belongs to another configuration" in caplog.text and "optim.lr_max: 0.005 -> 0.01" in caplog.text


@pytest.mark.slow
def test_batch_that_does_not_fit_memory_suggests_a_smaller_batch(tmp_path, corpus):
    # A real allocator failure: cap the child's address space a little above what it has mapped after import.
    script = textwrap.dedent(f"""
        import resource, psutil, torch
        torch.set_num_threads(1)
        from cs336lm.config import RunConfig
        from cs336lm.training.train import train
        vms = psutil.Process().memory_info().vms
        resource.setrlimit(resource.RLIMIT_AS, (vms + 1_000_000_000, resource.RLIM_INFINITY))
        # Logits of 512 × 16 × 50,000 float32 are 1.6 GB: beyond the cap, while everything before them fits.
        cfg = RunConfig.from_flat({{"model.vocab_size": 50_000, "model.context_length": 16, "model.d_model": 32,
            "model.num_layers": 1, "model.num_heads": 2, "model.d_ff": 64, "train.batch_size": 512,
            "train.token_budget": 512 * 16, "train.eval_batches": 1, "train.device": "cpu"}})
        train(cfg, {str(corpus[0])!r}, {str(corpus[1])!r}, model_path={str(tmp_path / 'run/model.pt')!r},
              metrics_path={str(tmp_path / 'run/metrics.jsonl')!r}, summary_path={str(tmp_path / 'run/s.json')!r})
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode != 0
    assert "BatchTooLargeError" in done.stderr, done.stderr[-2000:]
    assert "set train.batch_size to 256 or less" in done.stderr


_COURSE_STEPS = """
import numpy as np, torch
torch.set_num_threads(1)
from cs336lm.config import RunConfig
from cs336lm.training.train import train
root = sys.argv[1]
cfg = RunConfig.from_flat({"train.batch_size": 2, "train.token_budget": 2 * 2 * 256, "train.eval_batches": 1,
                           "train.final_eval_tokens": 2 * 256, "train.device": "cpu"})
mark()
summary = train(cfg, root + "/train.npy", root + "/valid.npy", model_path=root + "/run/model.pt",
                metrics_path=root + "/run/metrics.jsonl", summary_path=root + "/run/summary.json")
report(steps=summary.steps)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="peak RSS from /proc/self: Linux")
def test_course_tinystories_model_steps_on_cpu_within_memory(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("train", "valid"):
        np.save(tmp_path / f"{name}.npy", rng.integers(0, 10_000, size=4096, dtype=np.uint16))
    # In a child process: the peak of its own resident memory, not the shared pytest process's.
    memory = peak_rss_mb(_COURSE_STEPS, str(tmp_path))
    summary = read_summary(tmp_path / "run" / "summary.json")
    # Two steps on random tokens learn nothing beyond their frequencies: a finished run, diverged by the rule.
    assert memory["steps"] == summary.steps == 2 and summary.stopped_early is None
    assert "unigram entropy" in summary.divergence
    assert summary.parameters.total == 22_696_448
    assert summary.final_val_loss == pytest.approx(np.log(10_000), rel=0.1)
    # 22.7M float32 parameters with grads and two AdamW moments are 0.36 GB; allow activations and allocator slack.
    assert memory["grown_mb"] < 1500, f"resident memory grew by {memory['grown_mb']:.0f} MB"


def test_malformed_provenance_is_an_error_before_any_work(tmp_path, corpus):
    with pytest.raises(ValueError, match="provenance has unknown entries"):
        train(tiny_config(), *corpus, **outputs(tmp_path / "run"), provenance={"datasets": {}})
    with pytest.raises(ValueError, match=r"provenance\['selected'\] must map dotted keys"):
        train(tiny_config(), *corpus, **outputs(tmp_path / "run"),
              provenance={"selected": {"optim.lr_max": 1e-3}})
    assert not (tmp_path / "run").exists()


def test_the_model_vocabulary_is_the_tokenizers(tmp_path):
    import json

    from cs336lm.config import RunConfig
    from cs336lm.tokenization import Tokenizer, train_bpe
    from cs336lm.training.train import with_tokenizer_vocabulary

    corpus = tmp_path / "tiny.txt"
    corpus.write_text("low lower lowest<|endoftext|>newer newest<|endoftext|>" * 20)
    vocab, merges = train_bpe(corpus, 400, ["<|endoftext|>"])  # far more than this text has pairs to merge
    assert len(vocab) < 400
    Tokenizer(vocab, merges, ["<|endoftext|>"]).save(tmp_path / "tok")
    asked = RunConfig.from_flat({"model.vocab_size": 400})
    fitted = with_tokenizer_vocabulary(asked, tmp_path / "tok" / "vocab.json")
    assert fitted.model.vocab_size == len(vocab) == max(vocab) + 1
    assert fitted.to_flat() == {**asked.to_flat(), "model.vocab_size": len(vocab)}  # nothing else changes
    (tmp_path / "bad.json").write_text(json.dumps(["not", "a", "vocab"]))
    with pytest.raises(ValueError, match="bad.json: not a readable vocab.json"):
        with_tokenizer_vocabulary(asked, tmp_path / "bad.json")


def test_a_budget_too_small_for_one_step_is_an_error_and_writes_nothing(tmp_path, corpus, monkeypatch):
    StepClock(monkeypatch)  # each evaluation takes 1/4 s: a 0.3 s budget cannot fit a step and the final one
    cfg = tiny_config(**{"train.token_budget": 8 * 16 * 100, "train.wall_clock_budget_s": 0.3})
    paths = outputs(tmp_path / "run")
    with pytest.raises(ValueError, match=r"train.wall_clock_budget_s = 0.3 s leaves no time for one training step"):
        train(cfg, *corpus, **paths)
    assert not any(p.exists() for p in paths.values()), "no output is written"
