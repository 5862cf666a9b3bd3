"""cs336lm.report on hand-written run directories: figures are PNGs, tables have a row per run, and the writeup's
sentences follow the numbers (best learning rate, diverged rates, ablation deltas, demo vs course provenance)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from cs336lm import report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_run(path: Path, *, lr: float = 1e-3, batch_size: int = 16, final: float | None = 2.0, diverged: bool = False,
             steps: int = 40, norm: str = "rmsnorm", budget: float = 0.0, non_embedding: int = 1000) -> Path:
    """A run directory with a plausible falling (or exploding) loss curve and its summary."""
    path.mkdir(parents=True)
    start = 7.0
    lines = []
    for step in range(1, steps + 1, 5):
        loss = start * (1 + step) if diverged else final + (start - final) * math.exp(-step / 10)
        line = {"step": step, "tokens": step * batch_size * 8, "elapsed_s": step * 0.1, "lr": lr,
                "train_loss": loss if loss < 1e3 else None, "grad_norm": 1.0, "tokens_per_s": 1000.0 * batch_size}
        if step % 10 == 1:
            line["val_loss"] = None if diverged and step > 1 else loss
        lines.append(json.dumps(line))
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    summary = {
        "status": "diverged" if diverged else "ok", "stopped_early": "diverged" if diverged else None,
        "final_val_loss": None if diverged else final, "best_val_loss": None if diverged else final,
        "final_train_loss": None if diverged else final, "steps": steps, "tokens": steps * batch_size * 8,
        "wall_time_s": steps * 0.1, "tokens_per_s": 1000.0 * batch_size, "mfu": None,
        "parameters": {"total": non_embedding + 500, "non_embedding": non_embedding}, "flops_per_token": 1e4,
        "config": {"model": {"norm": norm, "norm_position": "pre", "pos_emb": "rope", "ffn": "swiglu", "d_ff": 96},
                   "optim": {"lr_max": lr}, "train": {"batch_size": batch_size, "wall_clock_budget_s": budget}},
        "code": {"git_sha": "abc", "git_dirty": False}, "versions": {}, "device": "cpu",
    }
    (path / "summary.json").write_text(json.dumps(summary))
    return path


@pytest.fixture
def runs(tmp_path) -> dict[str, dict[str, Path]]:
    r = tmp_path / "runs"
    return {
        "lr_sweep": {"lr_max~0.001": make_run(r / "lr1", lr=1e-3, final=2.5),
                     "lr_max~0.01": make_run(r / "lr2", lr=1e-2, final=2.0),
                     "lr_max~1": make_run(r / "lr3", lr=1.0, diverged=True)},
        "batch_size": {"batch_size~4": make_run(r / "b4", batch_size=4, final=2.2),
                       "batch_size~64": make_run(r / "b64", batch_size=64, final=2.6)},
        "ablations": {"baseline": make_run(r / "base", final=2.0),
                      "no_rmsnorm": make_run(r / "nonorm", norm="none", diverged=True, non_embedding=990)},
        "ts_main": {"main": make_run(r / "ts", final=1.9)},
        "owt_main": {"main": make_run(r / "owt", final=3.4)},
        "leaderboard": {"main": make_run(r / "lb", final=3.3, budget=5400.0)},
    }


@pytest.mark.parametrize("plot", ["plot_lr_sweep", "plot_batch_size", "plot_ablation", "plot_main",
                                  "plot_leaderboard"])
def test_plots_write_pngs(runs, tmp_path, plot):
    experiment = {"plot_lr_sweep": "lr_sweep", "plot_batch_size": "batch_size", "plot_ablation": "ablations",
                  "plot_main": "ts_main", "plot_leaderboard": "leaderboard"}[plot]
    out = tmp_path / "figures" / f"{plot}.png"
    getattr(report, plot)(runs[experiment], out)
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_runs_table_has_one_row_per_run(runs, tmp_path):
    report.write_runs_table(runs, tmp_path / "runs.csv", tmp_path / "runs.md")
    table = pd.read_csv(tmp_path / "runs.csv")
    assert len(table) == sum(len(v) for v in runs.values())
    assert table.loc[table.variant == "lr_max~1", "status"].item() == "diverged"
    assert "| experiment" in (tmp_path / "runs.md").read_text()


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
    report.write_report(
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
