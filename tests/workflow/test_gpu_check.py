"""bench/gpu_check.sh end to end with --device cpu on tiny shapes (real pytest, benchmark, Snakemake and probe
processes), and its clear refusals."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "bench" / "gpu_check.sh"


def run_check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=600,
                          env=None if env is None else {**os.environ, **env})


@pytest.mark.slow
def test_gpu_check_runs_end_to_end_on_cpu(tmp_path):
    done = run_check("--device", "cpu", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary_line = done.stdout.strip().splitlines()[-1]
    assert summary_line.startswith("gpu_check OK on CPU"), summary_line
    for part in ("GPU tests 0 passed, ", " skipped", "train step float32 batch 8: ", "x built-ins",
                 "train_lm ", "host RSS ", "largest batch 8", "leaderboard (baseline (not chosen yet)): ",
                 "B tokens in 1.5 h"):
        assert part in summary_line, (part, summary_line)
    assert summary_line in (tmp_path / "gpu_check.log").read_text()
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert (bench["batch_size"], bench["context_length"], bench["dtype"]) == (8, 32, "float32")
    ratio = bench["ratio (tokens/s)"]
    assert len(ratio["per_round"]) == 1 and ratio["median"] == ratio["per_round"][0]  # --rounds 1
    assert bench["peak_flops"] is None and bench["ours"]["mfu"] is None  # no peak to compare with on a CPU
    probe = json.loads((tmp_path / "probe.json").read_text())
    assert probe["batch_size"] == 8 and [t["batch_size"] for t in probe["trials"]] == [1, 2, 4, 8]
    board = json.loads((tmp_path / "leaderboard.json").read_text())["runs"]
    assert [r["run"] for r in board] == ["leaderboard/main"] * 2 and all(r["tokens/s"] > 0 for r in board)
    assert all(r["tokens_in_budget"] < r["projected tokens_in_budget"] for r in board), "a CPU is no H100"
    run = json.loads((tmp_path / "workflow/results/runs/gpu_check/course/summary.json").read_text())
    assert run["stopped_early"] == "wall_clock"
    # A 10 s budget trains as many steps as the machine's load allows: too few and the run has not beaten token
    # frequencies, which the divergence rule calls diverged; a noisy short curve may be unstable. Either way the
    # status follows the numbers.
    learned = run["final_train_loss"] is not None and run["final_train_loss"] < run["no_learning_loss"]
    expected = "diverged" if not learned else "unstable" if run["instability"] else "ok"
    assert run["status"] == expected, run
    assert run["config"]["model"]["d_model"] == 32 and run["config"]["model"]["vocab_size"] == 400
    assert run["tokens"] == run["steps"] * run["config"]["train"]["batch_size"] * run["config"]["model"][
        "context_length"]
    assert run["tokens_per_s"] == pytest.approx(run["tokens"] / run["wall_time_s"])
    # The summary line prints the files' numbers, at its precision.
    printed = re.search(r"batch 8: ([\d,]+) tok/s, ([\d.]+)x built-ins \| train_lm (\d+)s: ([\d,]+) tok/s",
                        summary_line)
    assert printed, summary_line
    assert printed.group(1) == f"{bench['ours']['tokens/s']:,.0f}" and printed.group(2) == f"{ratio['median']:.2f}"
    assert printed.group(3) == f"{run['wall_time_s']:.0f}" and printed.group(4) == f"{run['tokens_per_s']:,.0f}"


def test_gpu_check_refuses_bad_arguments(tmp_path):
    done = run_check("--device", "tpu", "--out", str(tmp_path))
    assert done.returncode == 2 and "--device must be cuda or cpu, not 'tpu'" in done.stderr
    done = run_check("--frobnicate")
    assert done.returncode == 2 and "unknown argument '--frobnicate'" in done.stderr


def test_gpu_check_without_cuda_says_to_use_cpu(tmp_path):
    done = run_check("--out", str(tmp_path), env={"CUDA_VISIBLE_DEVICES": ""})  # no GPU, on any machine
    assert done.returncode == 1
    assert "torch sees no CUDA device" in done.stdout and "use --device cpu" in done.stdout
    assert "torch sees no CUDA device" in (tmp_path / "gpu_check.log").read_text()
