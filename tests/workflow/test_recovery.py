"""README's recovery after Snakemake itself is killed (kill -9 of Snakemake and its job, as when a laptop or login
node dies mid-`train_lm`), run in real subprocesses exactly as the README says: the same command stops at the
stale lock, `--unlock` with the same arguments clears it, and the same command again resumes the run from its
checkpoint and ends with the metrics of an uninterrupted run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cs336lm.training.metrics import read_metrics

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO / "tests" / "data" / "tiny_config.yaml"
RUN = Path("results") / "runs" / "ts_main" / "main"
TRAIN_LOG = Path("results") / "logs" / "train_lm" / "ts_main" / "main.log"
STEPS = 600  # long enough to be killed mid-run on a loaded machine, a few seconds on an idle one
KILL_AT_STEP = 100


def recovery_config(path: Path) -> Path:
    """tests/data/tiny_config.yaml cut to one run of STEPS steps that checkpoints every 20 steps and evaluates
    three times."""
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["results_root"] = "results"
    config["data"] = {"tinystories": config["data"]["tinystories"]}
    train = config["defaults"]["train"]
    step_tokens = train["batch_size"] * config["defaults"]["model"]["context_length"]
    for key, every_third in (("eval_interval", STEPS // 3), ("eval_every_tokens", STEPS // 3 * step_tokens)):
        if key in train:
            train[key] = every_third
    config["experiments"] = {"ts_main": {"variants": {"main": {
        "train.token_budget": STEPS * step_tokens, "train.checkpoint_interval": 20, "train.log_interval": 10}}}}
    config["report"] = {}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def command(configfile: Path, *extra: str) -> list[str]:
    """The user's command (run in the work directory): the workflow up to the run's metrics; `extra`: --unlock."""
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", str(configfile),
            "--cores", "1", *extra, str(RUN / "metrics.jsonl")]


def run(workdir: Path, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=workdir, env=environment(), capture_output=True, text=True, timeout=600)


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def untimed(records: list[dict]) -> list[dict]:
    """Metrics lines without their wall-clock fields, which differ between any two runs."""
    return [{k: v for k, v in r.items() if k not in ("elapsed_s", "job_s", "tokens_per_s")} for r in records]


def kill_mid_training(workdir: Path, argv: list[str]) -> int:
    """Start the command in its own process group, SIGKILL the whole group (Snakemake and its job) once the
    progress metrics pass KILL_AT_STEP and a checkpoint exists; return the step last logged."""
    progress = workdir / RUN / "progress"
    process = subprocess.Popen(argv, cwd=workdir, env=environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            steps = [r["step"] for r in read_metrics(progress / "metrics.jsonl")] if (
                progress / "metrics.jsonl").exists() else []
            if steps and steps[-1] >= KILL_AT_STEP and any(progress.glob("*.pt")):
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=60)
                return steps[-1]
            if process.poll() is not None:
                pytest.fail(f"snakemake ended before it could be killed: {process.stderr.read()[-3000:]}")
            time.sleep(0.02)
        pytest.fail("training did not reach the step to kill it at")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        process.stderr.close()


def test_kill_9_of_snakemake_then_the_readme_recovery_resumes_the_run(tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    argv = command(recovery_config(tmp_path / "config.yaml"))

    # An uninterrupted run (data preparation included) gives the reference metrics; then the run alone goes.
    done = run(workdir, argv)
    assert done.returncode == 0, done.stderr[-5000:]
    reference = read_metrics(workdir / RUN / "metrics.jsonl")
    assert reference[-1]["step"] == STEPS
    for path in (workdir / RUN).iterdir():
        path.unlink()
    (workdir / TRAIN_LOG).unlink()

    killed_at = kill_mid_training(workdir, argv)
    assert not (workdir / RUN / "metrics.jsonl").exists(), "declared outputs appear only when the run is done"

    # README: the same command stops at the stale lock and says how to clear it ...
    locked = run(workdir, argv)
    assert locked.returncode != 0
    assert "Directory cannot be locked" in locked.stderr and "--unlock" in locked.stderr, locked.stderr[-3000:]
    # ... `--unlock` with the same arguments clears it, and the same command again resumes the run.
    unlocked = run(workdir, command(tmp_path / "config.yaml", "--unlock"))
    assert unlocked.returncode == 0, unlocked.stderr[-3000:]
    again = run(workdir, argv)
    assert again.returncode == 0, again.stderr[-5000:]

    resumed = re.findall(r"resumed from \S+ at step (\d+)", (workdir / TRAIN_LOG).read_text())
    assert len(resumed) == 1 and 0 < int(resumed[0]) <= killed_at, (workdir / TRAIN_LOG).read_text()[-3000:]
    assert untimed(read_metrics(workdir / RUN / "metrics.jsonl")) == untimed(reference)
