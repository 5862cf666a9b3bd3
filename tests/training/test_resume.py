"""Resume and preemption with real processes: kill -9 mid-run then rerun, and SIGTERM (Slurm's warning) then
rerun, each continue the metrics step by step and end on exactly the loss of an uninterrupted run."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from cs336lm.training.checkpoint import read_checkpoint
from cs336lm.training.metrics import read_metrics
from cs336lm.training.progress import PROGRESS_CHECKPOINT
from cs336lm.training.train import train
from tests.helpers import OVERRIDES, make_corpus, outputs, start_child, tiny_config, wait_for_step

# Real training subprocesses (pyproject's marker), about 20 s together; torch on one thread (tests/conftest.py).
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[tuple[Path, Path], list[dict]]:
    root = tmp_path_factory.mktemp("uninterrupted")
    corpus = make_corpus(root / "data")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    train(tiny_config(**OVERRIDES), *corpus, **outputs(root / "run"))
    torch.set_num_threads(threads)
    return corpus, read_metrics(root / "run" / "metrics.jsonl")


def assert_same_curve(resumed: list[dict], reference: list[dict]) -> None:
    assert [r["step"] for r in resumed] == [r["step"] for r in reference]
    for got, want in zip(resumed, reference, strict=True):
        for key in ("tokens", "lr", "train_loss", "grad_norm", "val_loss"):
            assert got.get(key) == want.get(key), (got["step"], key)
    assert all(b["elapsed_s"] >= a["elapsed_s"] for a, b in zip(resumed, resumed[1:], strict=False))


def test_kill_9_then_rerun_gives_the_uninterrupted_curve(tmp_path, uninterrupted):
    corpus, reference = uninterrupted
    run = tmp_path / "run"
    child = start_child(corpus, run)
    wait_for_step(child, run, 50)
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    child.stderr.close()
    child.stdout.close()
    saved = read_checkpoint(run / "progress" / PROGRESS_CHECKPOINT)["iteration"]
    assert 40 <= saved < 120
    assert not (run / "metrics.jsonl").exists(), "declared outputs appear only when the run is done"

    summary = train(tiny_config(**OVERRIDES), *corpus, **outputs(run))
    assert summary.steps == 120 and summary.status == "ok"
    assert_same_curve(read_metrics(run / "metrics.jsonl"), reference)


def test_sigterm_writes_a_checkpoint_and_exits_for_a_retry(tmp_path, uninterrupted):
    corpus, reference = uninterrupted
    run = tmp_path / "run"
    child = start_child(corpus, run)
    wait_for_step(child, run, 30)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 1, stderr[-2000:]
    assert "Preempted: received signal 15" in stderr
    ckpt = read_checkpoint(run / "progress" / PROGRESS_CHECKPOINT)
    assert 30 <= ckpt["iteration"] < 120  # mid-interval, so the resumed line averages restored partial sums
    assert f"checkpoint at step {ckpt['iteration']} written" in stderr

    train(tiny_config(**OVERRIDES), *corpus, **outputs(run))
    assert_same_curve(read_metrics(run / "metrics.jsonl"), reference)
