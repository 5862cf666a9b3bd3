"""train.implementation: the choice per device type (CUDA's branch without CUDA), fine-grained keys that override
it, reference and fast runs giving the same losses, and a run checkpointed on one path resuming on another."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cs336lm.training.train as T
from cs336lm.config import RunConfig
from cs336lm.lm.attention import resolve_backend
from cs336lm.training import implementation
from cs336lm.training.metrics import read_metrics
from cs336lm.training.progress import PROGRESS_CHECKPOINT, PROGRESS_METRICS
from cs336lm.training.summary import Implementation, read_summary
from cs336lm.training.train import train
from tests.helpers import TIMING_KEYS, make_corpus, outputs, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

PATHS = ("model.attention_backend", "train.dtype", "train.compile", "optim.implementation")


def chosen(cfg: RunConfig, device_type: str) -> tuple:
    flat = implementation.resolve(cfg, device_type).to_flat()
    return tuple(flat[k] for k in PATHS)


@pytest.mark.parametrize(("device_type", "expected"), [
    ("cuda", ("sdpa", "bfloat16", True, "fused")),
    ("cpu", ("sdpa", "float32", False, "fused")),
    ("mps", ("sdpa", "float32", False, "fused")),
])
def test_auto_picks_per_device_type(device_type, expected):
    assert chosen(RunConfig(), device_type) == expected


def test_fast_and_reference_ignore_the_device_type():
    for device_type in ("cuda", "cpu", "mps"):
        assert chosen(RunConfig.from_flat({"train.implementation": "fast"}), device_type) == (
            "sdpa", "bfloat16", True, "fused")
        assert chosen(RunConfig.from_flat({"train.implementation": "reference"}), device_type) == (
            "reference", "float32", False, "reference")


def test_an_explicit_fine_grained_value_overrides_only_its_path():
    cfg = RunConfig.from_flat({"train.implementation": "fast", "train.compile": False,
                               "optim.implementation": "foreach"})
    assert chosen(cfg, "cuda") == ("sdpa", "bfloat16", False, "foreach")
    assert implementation.describe(cfg, "cuda") == {"requested": "fast", "attention": "sdpa", "dtype": "bfloat16",
                                                    "compile": False, "optimizer": "foreach"}
    resolved = implementation.resolve(cfg, "cuda")
    assert implementation.resolve(resolved, "cpu") == resolved, "a resolved config has nothing left to choose"
    assert resolved.optim.lr_max == cfg.optim.lr_max and resolved.train.implementation == "fast"


def test_a_model_built_outside_training_gets_what_auto_picks():
    assert resolve_backend("auto") == implementation.preset("auto", "cpu")["model.attention_backend"] == "sdpa"
    assert resolve_backend("reference") == "reference"


def test_implementation_module_does_not_import_torch():
    code = ("import sys, cs336lm.training.implementation; "
            "assert 'torch' not in sys.modules, 'implementation imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


# The fast preset without torch.compile, which costs a minute of C++ builds on CPU; compiled vs eager is
# proven equal in tests/training/test_fast_paths.py.
FAST = {"train.implementation": "fast", "train.compile": False}
REFERENCE = {"train.implementation": "reference"}


def test_reference_and_fast_runs_give_the_same_losses(tmp_path):
    corpus = make_corpus(tmp_path / "data")
    losses = {}
    for name, paths in (("reference", REFERENCE), ("auto", {}), ("fast", FAST)):
        cfg = tiny_config(**paths, **{"train.token_budget": 8 * 16 * 20, "train.log_interval": 1})
        summary = train(cfg, *corpus, **outputs(tmp_path / name))
        losses[name] = torch.tensor([r["train_loss"] for r in read_metrics(tmp_path / name / "metrics.jsonl")])
        assert read_summary(tmp_path / name / "summary.json").implementation == summary.implementation
    assert len(losses["reference"]) == 20
    # float32 paths agree closely (torch's fused AdamW adds eps after the bias correction, ours before it);
    # bf16 autocast to its 8-bit mantissa.
    torch.testing.assert_close(losses["auto"], losses["reference"], rtol=1e-3, atol=0)
    torch.testing.assert_close(losses["fast"], losses["reference"], rtol=2e-2, atol=0)
    assert not torch.equal(losses["fast"], losses["reference"]), "the fast run really ran another path"


def preempt_at(monkeypatch, step: int) -> None:
    """Send this process SIGTERM (Slurm's warning) while the loop fetches the batch for `step`."""
    calls = {"n": 0}
    get_batch = T.get_batch

    def fetch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == step:
            os.kill(os.getpid(), signal.SIGTERM)
        return get_batch(*args, **kwargs)

    monkeypatch.setattr(T, "get_batch", fetch)


@pytest.mark.parametrize(("first", "then"), [(REFERENCE, FAST), (FAST, REFERENCE)],
                         ids=["reference-then-fast", "fast-then-reference"])
def test_a_run_checkpointed_on_one_path_resumes_on_another(tmp_path, monkeypatch, caplog, first, then):
    corpus = make_corpus(tmp_path / "data")
    train(tiny_config(**first), *corpus, **outputs(tmp_path / "uninterrupted"))
    reference = read_metrics(tmp_path / "uninterrupted" / "metrics.jsonl")

    run = tmp_path / "run"
    with monkeypatch.context() as m:
        preempt_at(m, 55)
        with pytest.raises(T.Preempted):
            train(tiny_config(**first), *corpus, **outputs(run))
    assert (run / "progress" / PROGRESS_CHECKPOINT).exists() and (run / "progress" / PROGRESS_METRICS).exists()
    caplog.set_level(logging.INFO)
    summary = train(tiny_config(**then), *corpus, **outputs(run))
    assert "resumed from" in caplog.text and "at step 55" in caplog.text
    assert "belongs to another configuration" not in caplog.text
    assert summary.steps == 120
    assert summary.implementation == Implementation(**implementation.describe(tiny_config(**then), "cpu"))
    resumed = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in resumed] == [r["step"] for r in reference]
    untimed = [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in resumed + reference]
    assert untimed[:6] == untimed[len(resumed):][:6], "up to the checkpoint, the first path's lines as they were"
    got = torch.tensor([r["train_loss"] for r in resumed])
    want = torch.tensor([r["train_loss"] for r in reference])
    torch.testing.assert_close(got, want, rtol=3e-2, atol=0)  # the moments came across: same curve, bf16 aside
