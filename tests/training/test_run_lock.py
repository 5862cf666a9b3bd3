"""One trainer per run directory: a second trainer (a real process) on a run being trained stops at once naming
the holder and changes nothing; after the holder is killed with -9 the lock is free and the run resumes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from cs336lm.training.progress import LOCK_FILE, PROGRESS_CHECKPOINT, PROGRESS_METRICS
from cs336lm.training.run_lock import RunLockedError, run_lock
from cs336lm.training.train import train
from tests.helpers import OVERRIDES, REPO_ROOT, make_corpus, outputs, start_child, tiny_config, wait_for_step

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_the_lock_names_its_holder_and_is_removed_after(tmp_path):
    lock = tmp_path / "progress" / LOCK_FILE
    with run_lock(lock):
        holder = json.loads(lock.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(RunLockedError, match=rf"locked by pid {os.getpid()} on {socket.gethostname()}, started"):
            with run_lock(lock):
                pass
        assert lock.exists(), "a refused trainer leaves the holder's lock alone"
    assert not lock.exists()
    with run_lock(lock):  # free again
        pass


@pytest.mark.slow
def test_a_second_trainer_process_stops_and_a_killed_holder_leaves_no_lock(tmp_path):
    corpus = make_corpus(tmp_path / "data")
    run = tmp_path / "run"
    # Once it has logged step 30, past its first checkpoint, it stops for a minute a step: it holds the lock throughout,
    # however slowly the second trainer below starts on a loaded machine.
    holder = start_child(corpus, run, delay=0.05, hold_after=32)
    wait_for_step(holder, run, 21)  # past its first checkpoint
    progress = sorted(p.name for p in (run / "progress").iterdir())

    second = subprocess.run(
        [sys.executable, "-c", f"""
import torch
torch.set_num_threads(1)
from tests.helpers import tiny_config
from cs336lm.training.train import train
run = {str(run)!r}
train(tiny_config(**{OVERRIDES!r}), {str(corpus[0])!r}, {str(corpus[1])!r}, model_path=run + "/model.pt",
      metrics_path=run + "/metrics.jsonl", summary_path=run + "/summary.json")
"""], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert second.returncode != 0
    assert "RunLockedError" in second.stderr and f"locked by pid {holder.pid} on {socket.gethostname()}" in \
        second.stderr, second.stderr[-2000:]
    assert holder.poll() is None, "the holder trains on"
    assert set(progress) <= {p.name for p in (run / "progress").iterdir()}, "the second trainer removed nothing"

    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    holder.stdout.close()
    holder.stderr.close()
    assert (run / "progress" / PROGRESS_CHECKPOINT).exists() and (run / "progress" / PROGRESS_METRICS).exists()
    summary = train(tiny_config(**OVERRIDES), *corpus, **outputs(run))  # the kernel released the dead one's lock
    assert summary.steps == 120 and not (run / "progress").exists()
