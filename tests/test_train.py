"""cs336lm.train on a tiny model and a synthetic corpus: loss falls, outputs and their keys, divergence, the
wall-clock budget, bad input, and the course TinyStories model stepping on CPU within memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from cs336lm.checkpoint import CheckpointError, save_checkpoint
from cs336lm.config import RunConfig
from cs336lm.metrics import KEYS, read_metrics
from cs336lm.model import TransformerLM
from cs336lm.optim import AdamW
from cs336lm.train import PROGRESS_CHECKPOINT, train

REPO_ROOT = Path(__file__).resolve().parent.parent
VOCAB = 32
SUMMARY_KEYS = {"status", "stopped_early", "final_val_loss", "best_val_loss", "final_train_loss", "steps", "tokens",
                "wall_time_s", "tokens_per_s", "parameters", "flops_per_token", "mfu", "config", "code", "versions",
                "device"}


def make_corpus(directory: Path, n: int = 20_000, vocab: int = VOCAB) -> tuple[Path, Path]:
    """A Markov chain next = 3·prev + U{0,1,2} mod vocab: learnable down to ln 3 ≈ 1.10 nats per token."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 3, size=n)
    tokens = np.zeros(n, dtype=np.uint16)
    for i in range(1, n):
        tokens[i] = (int(tokens[i - 1]) * 3 + noise[i]) % vocab
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "train.npy", tokens[: n * 9 // 10])
    np.save(directory / "valid.npy", tokens[n * 9 // 10:])
    return directory / "train.npy", directory / "valid.npy"


def tiny_config(**overrides) -> RunConfig:
    flat = {
        "model.vocab_size": VOCAB, "model.context_length": 16, "model.d_model": 32, "model.num_layers": 2,
        "model.num_heads": 2, "model.d_ff": 64,
        "optim.lr_max": 1e-2, "optim.lr_min": 1e-3, "optim.warmup_fraction": 0.05,
        "train.batch_size": 8, "train.token_budget": 8 * 16 * 120, "train.log_interval": 10,
        "train.eval_interval": 40, "train.eval_batches": 2, "train.checkpoint_interval": 20, "train.device": "cpu",
    }
    return RunConfig.from_flat({**flat, **overrides})


def outputs(run_dir: Path) -> dict[str, Path]:
    return {"model_path": run_dir / "model.pt", "metrics_path": run_dir / "metrics.jsonl",
            "summary_path": run_dir / "summary.json"}


@pytest.fixture(autouse=True)
def one_thread():
    # Bitwise-equal runs (resume tests) need the same matmul blocking; one thread also spares the shared CPU.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def corpus(tmp_path) -> tuple[Path, Path]:
    return make_corpus(tmp_path / "data")


def test_loss_falls_and_outputs_have_their_keys(tmp_path, corpus):
    cfg = tiny_config()
    run = tmp_path / "run"
    summary = train(cfg, *corpus, **outputs(run))

    records = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, *range(10, 121, 10)]
    for r in records:
        assert set(r) - {"val_loss"} == set(KEYS)
    assert [r["step"] for r in records if "val_loss" in r] == [40, 80, 120]
    assert records[-1]["train_loss"] < 0.5 * records[0]["train_loss"]
    assert records[-1]["val_loss"] < 1.6  # from ln 32 ≈ 3.47 towards the chain's entropy ln 3 ≈ 1.10
    assert all(b["elapsed_s"] >= a["elapsed_s"] for a, b in zip(records, records[1:], strict=False))

    assert SUMMARY_KEYS <= set(summary)
    assert json.loads((run / "summary.json").read_text()) == summary
    assert summary["status"] == "ok" and summary["stopped_early"] is None
    assert summary["steps"] == cfg.num_iterations == 120 and summary["tokens"] == 120 * 8 * 16
    assert summary["final_val_loss"] == records[-1]["val_loss"]
    assert summary["best_val_loss"] == min(r["val_loss"] for r in records if "val_loss" in r)
    assert summary["config"] == cfg.to_dict() and summary["mfu"] is None
    assert set(summary["code"]) == {"git_sha", "git_dirty"} and summary["versions"]["torch"] == torch.__version__
    assert not (run / "progress").exists(), "progress files are removed once the outputs are in place"


def test_absurd_lr_ends_diverged_with_outputs(tmp_path, corpus):
    cfg = tiny_config(**{"optim.lr_max": 1e4, "optim.lr_min": 1e4, "optim.warmup_fraction": 0.0,
                         "optim.grad_clip": 0.0, "train.log_interval": 1})
    run = tmp_path / "run"
    summary = train(cfg, *corpus, **outputs(run))
    assert summary["status"] == "diverged" and summary["stopped_early"] == "diverged"
    assert summary["steps"] < cfg.num_iterations
    assert all(p.exists() for p in outputs(run).values())
    records = read_metrics(run / "metrics.jsonl")
    assert records[-1]["step"] == summary["steps"]
    last = records[-1]["train_loss"]
    assert last is None or last > 2 * records[0]["train_loss"]  # null in JSON when NaN


def test_wall_clock_budget_stops_with_status_ok(tmp_path, corpus):
    cfg = tiny_config(**{"train.token_budget": 8 * 16 * 100_000, "train.wall_clock_budget_s": 1.0,
                         "train.eval_interval": 100_000})
    summary = train(cfg, *corpus, **outputs(tmp_path / "run"))
    assert summary["status"] == "ok" and summary["stopped_early"] == "wall_clock"
    assert 0 < summary["steps"] < cfg.num_iterations
    assert summary["final_val_loss"] is not None, "the last step before the budget runs is evaluated"
    assert summary["wall_time_s"] >= 1.0  # (no upper bound: speed is for bench/, not a test on a loaded machine)


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
    assert summary["steps"] == 120 and read_metrics(tmp_path / "run" / "metrics.jsonl")[0]["step"] == 1
    assert (progress / (PROGRESS_CHECKPOINT + ".stale")).exists()
    assert "belongs to another configuration" in caplog.text and "optim.lr_max: 0.005 -> 0.01" in caplog.text


@pytest.mark.slow
def test_batch_that_does_not_fit_memory_suggests_a_smaller_batch(tmp_path, corpus):
    # A real allocator failure: cap the child's address space a little above what it has mapped after import.
    script = textwrap.dedent(f"""
        import resource, psutil, torch
        torch.set_num_threads(1)
        from cs336lm.config import RunConfig
        from cs336lm.train import train
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


def test_course_tinystories_model_steps_on_cpu_within_memory(tmp_path):
    psutil = pytest.importorskip("psutil")
    rng = np.random.default_rng(0)
    for name in ("train", "valid"):
        np.save(tmp_path / f"{name}.npy", rng.integers(0, 10_000, size=4096, dtype=np.uint16))
    cfg = RunConfig.from_flat({"train.batch_size": 2, "train.token_budget": 2 * 2 * 256, "train.eval_batches": 1,
                               "train.device": "cpu", "model.attention_backend": "sdpa",
                               "optim.implementation": "foreach"})
    before = psutil.Process().memory_info().rss
    summary = train(cfg, tmp_path / "train.npy", tmp_path / "valid.npy", **outputs(tmp_path / "run"))
    grown = psutil.Process().memory_info().rss - before
    assert summary["status"] == "ok" and summary["steps"] == 2
    assert summary["parameters"]["total"] == 22_696_448
    assert summary["final_val_loss"] == pytest.approx(np.log(10_000), rel=0.1)
    # 22.7M float32 parameters with grads and two AdamW moments are 0.36 GB; allow activations and allocator slack.
    assert grown < 1.5e9, f"resident memory grew by {grown / 1e9:.2f} GB"
