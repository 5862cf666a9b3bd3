"""Figures and tables of the handout §7 experiments: loading runs, plotting their curves, tabulating them.

Pure functions over run directories holding `metrics.jsonl` and `summary.json` (DESIGN.md §5); the writeup that
reads them is cs336lm.writeup.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import pandas as pd  # noqa: E402

from cs336lm.metrics import read_metrics  # noqa: E402
from cs336lm.summary import RunSummary, read_summary  # noqa: E402

Runs = Mapping[str, str | os.PathLike]  # label -> run directory


def load_metrics(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The run's metrics lines as a frame (non-finite losses are null in the file and NaN here)."""
    frame = pd.DataFrame.from_records(read_metrics(Path(run_dir) / "metrics.jsonl"))
    for column in ("val_loss", "train_loss"):
        if column not in frame:
            frame[column] = float("nan")
    return frame.astype({"val_loss": float, "train_loss": float}) if len(frame) else frame


def load_summary(run_dir: str | os.PathLike) -> RunSummary:
    return read_summary(Path(run_dir) / "summary.json")


# ---- figures -----------------------------------------------------------------------------------------------

def _curves(ax: plt.Axes, runs: Runs, x: str, y: str, xlabel: str, scale: float = 1.0) -> None:
    """One line per run. A diverged run is dashed and ends in a cross at its last logged step, drawn at the top
    edge when its loss was off the chart or not finite; the y range ignores its blow-up."""
    tops, finite, crosses = [], [], []
    for label, run_dir in runs.items():
        frame, summary = load_metrics(run_dir), load_summary(run_dir)
        points = frame[[x, y]].dropna() if len(frame) else pd.DataFrame(columns=[x, y])
        diverged = summary.status == "diverged"
        line, = ax.plot(points[x] / scale, points[y], "--" if diverged else "-",
                        marker="." if y == "val_loss" else None, label=f"{label} (diverged)" if diverged else label)
        values = [v for v in points[y] if math.isfinite(v)]
        tops += values[:1] if diverged else values
        finite += values
        if diverged and len(frame):
            last = frame.iloc[-1]
            crosses.append((last[x] / scale, last[y], line.get_color()))
    if finite:
        low, top = min(finite), max(tops)
        pad = 0.05 * (top - low) if top > low else 0.5
        ax.set_ylim(low - pad, top + pad)
    top_edge = ax.get_ylim()[1]
    for x_value, y_value, color in crosses:
        on_chart = y_value is not None and math.isfinite(y_value) and y_value <= top_edge
        ax.plot(x_value, y_value if on_chart else top_edge, "x", color=color, markersize=10, markeredgewidth=2,
                clip_on=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(y.replace("_", " "))
    ax.grid(alpha=0.3)


def _save(fig: plt.Figure, out_path: str | os.PathLike) -> None:
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)


def _sorted_by(runs: Runs, key: str) -> dict[str, str | os.PathLike]:
    """Runs relabelled by one config value (e.g. `optim.lr_max`) and sorted by it."""
    section, name = key.split(".")
    values = {label: load_summary(d).config[section][name] for label, d in runs.items()}
    return {f"{name} = {values[label]:g}": runs[label] for label in sorted(runs, key=values.get)}


def plot_lr_sweep(runs: Runs, out_path: str | os.PathLike) -> None:
    """Validation and training loss against steps and against wall clock, one line per learning rate."""
    runs = _sorted_by(runs, "optim.lr_max")
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for row, (x, label, scale) in enumerate((("step", "step", 1.0), ("elapsed_s", "wall clock (min)", 60.0))):
        for col, y in enumerate(("val_loss", "train_loss")):
            _curves(axes[row, col], runs, x, y, label, scale)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Learning-rate sweep (dashed, x = diverged)")
    _save(fig, out_path)


def plot_batch_size(runs: Runs, out_path: str | os.PathLike) -> None:
    """Validation loss against tokens and against wall clock at equal token budgets, and throughput per batch."""
    runs = _sorted_by(runs, "train.batch_size")
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    _curves(axes[0], runs, "tokens", "val_loss", "tokens (M)", 1e6)
    _curves(axes[1], runs, "elapsed_s", "val_loss", "wall clock (min)", 60.0)
    axes[0].legend(fontsize=8)
    throughput = [load_summary(d).tokens_per_s or 0.0 for d in runs.values()]
    axes[2].bar([label.split("= ")[1] for label in runs], throughput)
    axes[2].set_xlabel("batch size")
    axes[2].set_ylabel("tokens / s")
    fig.suptitle("Batch size at equal tokens")
    _save(fig, out_path)


def plot_ablation(runs: Runs, out_path: str | os.PathLike) -> None:
    """An ablation against the baseline: training and validation loss against steps."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    _curves(axes[0], runs, "step", "train_loss", "step")
    _curves(axes[1], runs, "step", "val_loss", "step")
    axes[0].legend(fontsize=8)
    fig.suptitle(" vs ".join(runs))
    _save(fig, out_path)


def plot_main(runs: Runs, out_path: str | os.PathLike) -> None:
    """The main runs (TinyStories and OpenWebText): loss against tokens."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    _curves(axes[0], runs, "tokens", "train_loss", "tokens (M)", 1e6)
    _curves(axes[1], runs, "tokens", "val_loss", "tokens (M)", 1e6)
    axes[0].legend(fontsize=8)
    fig.suptitle("Main runs (each loss is in nats per token of its own tokenizer)")
    _save(fig, out_path)


def plot_leaderboard(runs: Runs, out_path: str | os.PathLike) -> None:
    """Validation loss against wall clock, with the wall-clock budget marked."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _curves(ax, runs, "elapsed_s", "val_loss", "wall clock (min)", 60.0)
    budgets = {load_summary(d).config["train"]["wall_clock_budget_s"] for d in runs.values()} - {0}
    for budget in budgets:
        ax.axvline(budget / 60, color="grey", linestyle=":", label=f"budget {budget / 60:g} min")
    ax.legend(fontsize=8)
    ax.set_title("Leaderboard: validation loss within the wall-clock budget")
    _save(fig, out_path)


# ---- tables ------------------------------------------------------------------------------------------------

def runs_table(runs: Mapping[str, Runs]) -> pd.DataFrame:
    """One row per run: experiment, variant, status, losses, steps, tokens, wall time, throughput, parameters."""
    rows = []
    for experiment, variants in runs.items():
        for variant, run_dir in variants.items():
            s = load_summary(run_dir)
            rows.append({
                "experiment": experiment, "variant": variant, "status": s.status,
                "stopped_early": s.stopped_early or "", "final_val_loss": s.final_val_loss,
                "best_val_loss": s.best_val_loss, "final_train_loss": s.final_train_loss,
                "steps": s.steps, "tokens": s.tokens, "wall_time_s": s.wall_time_s,
                "tokens_per_s": s.tokens_per_s, "mfu": s.mfu,
                "parameters": s.parameters.total,
                "non_embedding_parameters": s.parameters.non_embedding,
                "device": s.device,
            })
    return pd.DataFrame(rows)


def write_runs_table(runs: Mapping[str, Runs], csv_path: str | os.PathLike, md_path: str | os.PathLike) -> None:
    table = runs_table(runs)
    table.to_csv(csv_path, index=False)
    Path(md_path).write_text(markdown_table(table) + "\n", encoding="utf-8")


def markdown_table(table: pd.DataFrame) -> str:
    """`table` as a markdown table (4 significant digits), or a placeholder when it has no rows."""
    return table.to_markdown(index=False, floatfmt=".4g") if len(table) else "_(no rows)_"
