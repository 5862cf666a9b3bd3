"""cs336lm.writeup on hand-written run directories: the writeup's sentences follow the numbers (best learning rate,
diverged rates, ablation deltas, demo vs course provenance)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cs336lm import report, writeup
from tests.run_dirs import make_run, make_runs


@pytest.fixture
def runs(tmp_path) -> dict[str, dict[str, Path]]:
    return make_runs(tmp_path / "runs")


def write(runs, tmp_path, *, synthetic=True, layout=None, stats=None) -> str:
    figures = tmp_path / "results" / "figures"
    report.plot_lr_sweep(runs["lr_sweep"], figures / "lr_sweep.png")
    report.plot_ablation(runs["ablations"], figures / "ablations" / "no_rmsnorm.png")
    report.write_runs_table(runs, tmp_path / "runs.csv", tmp_path / "runs.md")
    samples = tmp_path / "results" / "samples" / "ts_main" / "main.md"
    samples.parent.mkdir(parents=True)
    samples.write_text("# Samples\n\n## Sample 1\n\nOnce upon a time there was a test.\n")
    source = "synthetic (tinystories style, 1,000 bytes, seed 0)" if synthetic else "https://example.org/ts.txt"
    out = tmp_path / "results" / "report.md"
    writeup.write_report(
        out, runs=runs, figures=[str(figures / "lr_sweep.png"), str(figures / "ablations" / "no_rmsnorm.png")],
        layout=layout or {"lr_sweep": "lr_sweep", "batch_size": "batch_size", "ablations": "ablations",
                          "ablation_baseline": "baseline", "main": ["ts_main", "owt_main"],
                          "leaderboard": "leaderboard", "samples": ["ts_main"]},
        samples=[str(samples)], runs_table=tmp_path / "runs.csv", tokenizer_stats=stats,
        data_sources={"tinystories/train": source, "owt/train": source},
        datasets={"lr_sweep": "tinystories", "batch_size": "tinystories", "ablations": "tinystories",
                  "ts_main": "tinystories", "owt_main": "owt", "leaderboard": "owt"},
        tokenizer_sizes={"tinystories": 400, "owt": 450})
    return out.read_text()


def test_report_sentences_follow_the_numbers(runs, tmp_path):
    text = write(runs, tmp_path)
    assert "The best learning rate was 0.01 (final validation loss 2)" in text
    assert "rates ≥ 1 diverged" in text
    assert "lowest final validation loss came from batch size 4" in text
    assert "`no_rmsnorm` (model.norm = none): diverged at step 40" in text
    assert "![learning-rate sweep](figures/lr_sweep.png)" in text
    assert "![no_rmsnorm vs baseline](figures/ablations/no_rmsnorm.png)" in text
    assert "Once upon a time there was a test." in text
    assert "`owt_main/main` ended 1.5 nats per token above `ts_main/main`" in text
    assert "stopped at the wall-clock budget" not in text and "budget 5400 s" in text
    assert "demo numbers (synthetic corpus)" in text and "course-scale data" not in text
    for variants in runs.values():
        for variant in variants:
            assert variant in text


def test_report_on_course_data_says_so_and_skips_missing_sections(runs, tmp_path):
    text = write(runs, tmp_path, synthetic=False, layout={"lr_sweep": "lr_sweep", "ablation_baseline": "baseline"})
    assert "course-scale data" in text and "demo numbers" not in text
    assert text.count("_Not run in this configuration._") == 4  # batch size, ablations, main, leaderboard


def test_report_without_divergence_says_the_edge_is_higher(tmp_path):
    r = tmp_path / "runs"
    runs = {"lr_sweep": {"a": make_run(r / "a", lr=1e-3, final=2.5), "b": make_run(r / "b", lr=3e-3, final=2.4)},
            "ablations": {"baseline": make_run(r / "base")}}
    text = write(runs, tmp_path, layout={"lr_sweep": "lr_sweep", "ablation_baseline": "baseline"})
    assert "No rate diverged, so the edge of stability lies above the largest rate tried" in text


def test_report_reads_tokenizer_stats(runs, tmp_path):
    stats = tmp_path / "tokenizer_stats.csv"
    pd.DataFrame([
        {"tokenizer": t, "corpus": c, "documents": 3, "bytes": 100, "tokens": 25, "bytes_per_token": bpt,
         "mb_per_s": 2.0, "pile_825gb_hours": 114.6, "longest_token": " together", "longest_token_bytes": 9}
        for t, c, bpt in [("tinystories", "tinystories", 4.0), ("owt", "tinystories", 3.5),
                          ("tinystories", "owt", 3.0), ("owt", "owt", 4.5)]]).to_csv(stats, index=False)
    text = write(runs, tmp_path, stats=stats)
    assert "On `owt` text the `tinystories` tokenizer gets 3 bytes per token against 4.5" in text
    assert "the 825 GB Pile would take 115 hours" in text
    assert "uint16" in text
