"""cs336lm.training.device.is_out_of_memory, the one test of running out of memory: what every allocator raises
counts, other errors do not, and both the trainer and the batch-size probe use it."""

from __future__ import annotations

import pytest
import torch

import cs336lm.training.batch_probe as batch_probe
import cs336lm.training.train as T
from cs336lm.training.device import MEMORY_ERRORS, is_out_of_memory
from tests.helpers import outputs, tiny_config, wide_logits_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("exc", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried "
                 "to allocate 1600000000 bytes"),
    RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB)"),
    MemoryError(),
])
def test_every_allocators_error_counts(exc):
    assert isinstance(exc, MEMORY_ERRORS) and is_out_of_memory(exc)


@pytest.mark.parametrize("exc", [RuntimeError("mat1 and mat2 shapes cannot be multiplied"), ValueError("memory"),
                                 KeyboardInterrupt()])
def test_other_errors_do_not(exc):
    assert not is_out_of_memory(exc)


def test_the_trainer_turns_a_memory_error_into_advice(tmp_path, corpus, monkeypatch):  # noqa: F811
    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(T.TrainStep, "__call__", no_memory)
    with pytest.raises(T.BatchTooLargeError, match="does not fit in memory"):
        T.train(tiny_config(), *corpus, **outputs(tmp_path / "run"))


def test_the_probe_counts_a_memory_error_as_not_fitting(monkeypatch):
    real_train_steps = batch_probe._train_steps

    def train_steps(step, cfg, batch_size, steps, device):
        if batch_size > 3:
            raise MemoryError()
        return real_train_steps(step, cfg, batch_size, steps, device)

    monkeypatch.setattr(batch_probe, "_train_steps", train_steps)
    trials = batch_probe._InProcessTrials(wide_logits_config(**{"model.vocab_size": 64}), torch.device("cpu"), 1)
    best, _ = batch_probe.search_largest(trials, 16)
    trials.close()
    assert best == 3
