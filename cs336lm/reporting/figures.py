"""The report's figures, each a function `plot(inputs, out_path)` of the manifest (cs336lm.reporting.inputs) that
the registry names and the workflow's one `plot_figure` rule calls. Curves come from metrics.jsonl, outcomes from
summary.json, so a diverged run is drawn as what it is."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import pandas as pd  # noqa: E402

from cs336lm.problems.generation_quality import grid_summary  # noqa: E402
from cs336lm.reporting.datasets import bits_per_byte, bytes_per_token  # noqa: E402
from cs336lm.reporting.inputs import ReportInputs  # noqa: E402
from cs336lm.reporting.runs import (  # noqa: E402
    Runs,
    best_run,
    finished,
    load_metrics,
    read_run,
    stability_edge,
)
from cs336lm.reporting.targets import LEADERBOARD_BASELINE, TINYSTORIES_TARGET  # noqa: E402


def _curves(ax: plt.Axes, runs: Runs, x: str, y: str, xlabel: str, scale: float = 1.0,
            transforms: Mapping[str, Callable[[float], float]] | None = None) -> None:
    """One line per run (its y values through `transforms[label]` if given). An unstable run is dotted. A diverged
    run is dashed and ends in
    a cross at its last logged step, drawn at the top edge when its loss was off the chart or not finite; the y
    range ignores its blow-up."""
    tops, finite, crosses = [], [], []
    for label, run_dir in runs.items():
        frame, summary = load_metrics(run_dir), read_run(run_dir)
        points = frame[[x, y]].dropna() if len(frame) else pd.DataFrame(columns=[x, y])
        transform = (transforms or {}).get(label)
        values = points[y].map(transform) if transform else points[y]
        diverged = summary.status == "diverged"
        style = "--" if diverged else ":" if summary.status == "unstable" else "-"
        line, = ax.plot(points[x] / scale, values, style, marker="." if y == "val_loss" else None,
                        label=f"{label} ({summary.status})" if style != "-" else label)
        finite_values = [v for v in values if math.isfinite(v)]
        tops += finite_values[:1] if diverged else finite_values
        finite += finite_values
        if diverged and len(frame):
            last = frame.iloc[-1]
            crosses.append((last[x] / scale, last[y], line.get_color()))
    if finite:
        low, top = min(finite), max(tops or finite)
        pad = 0.05 * (top - low) if top > low else 0.5
        ax.set_ylim(low - pad, top + pad)
    top_edge = ax.get_ylim()[1]
    for x_value, y_value, color in crosses:
        on_chart = y_value is not None and math.isfinite(y_value) and y_value <= top_edge and not transforms
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
    values = {label: read_run(d).config_value(key) for label, d in runs.items()}
    name = key.rpartition(".")[2]
    return {f"{name} = {values[label]:g}": runs[label] for label in sorted(runs, key=values.get)}


def toy_sgd(inputs: ReportInputs, out_path: str | os.PathLike) -> None:
    """§4.2: the toy problem's loss per step at each learning rate (log scale)."""
    table = pd.read_csv(inputs.file("problem/learning_rate_tuning"))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for lr, group in table.groupby("lr"):
        ax.semilogy(group.step, group.loss.clip(lower=1e-30), marker="o", label=f"lr = {lr:g}")
    ax.set_xlabel("SGD step")
    ax.set_ylabel("loss mean(w²) before the step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Toy SGD with step lr / sqrt(t + 1)")
    _save(fig, out_path)


def lr_sweep(inputs: ReportInputs, out_path: str | os.PathLike) -> None:
    """§7.2: validation and training loss against steps and against wall clock, one line per learning rate."""
    runs = _sorted_by(inputs.runs("lr_sweep"), "optim.lr_max")
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for row, (x, label, scale) in enumerate((("step", "step", 1.0), ("elapsed_s", "wall clock (min)", 60.0))):
        for col, y in enumerate(("val_loss", "train_loss")):
            _curves(axes[row, col], runs, x, y, label, scale)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Learning-rate sweep (dotted: unstable; dashed, x: diverged)")
    _save(fig, out_path)


def lr_edge(inputs: ReportInputs, out_path: str | os.PathLike) -> None:
    """§7.2 (b): final validation loss against the learning rate (log x), one mark per outcome
    (cs336lm.training.divergence): stable rates as dots, the best as a star, unstable rates as triangles at their
    final loss, diverged rates as crosses on the top edge, and the bracket between the largest stable and the
    smallest not-stable rate."""
    summaries = inputs.summaries("lr_sweep")
    lr = {label: s.config_value("optim.lr_max") for label, s in summaries.items()}
    ok = sorted((lr[k], s.final_val_loss) for k, s in summaries.items() if finished(s))
    unstable = sorted((lr[k], s.final_val_loss) for k, s in summaries.items()
                      if s.status == "unstable" and s.final_val_loss is not None and math.isfinite(s.final_val_loss))
    diverged = sorted(lr[k] for k, s in summaries.items() if s.status == "diverged")
    best = best_run(summaries)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if ok:
        ax.semilogx([x for x, _ in ok], [y for _, y in ok], "o-", color="tab:blue", label="stable")
    if unstable:
        ax.semilogx([x for x, _ in unstable], [y for _, y in unstable], "^", color="tab:orange", markersize=9,
                    label="unstable (loss rose or spiked)")
    top = max([y for _, y in ok + unstable], default=1.0)
    if diverged:
        ax.semilogx(diverged, [top * 1.05] * len(diverged), "x", color="tab:red", markersize=10, markeredgewidth=2,
                    label="diverged (drawn at the top)")
    stable, smallest_not_stable = stability_edge(summaries)
    if stable is not None and smallest_not_stable is not None:
        ax.axvspan(stable, smallest_not_stable, color="tab:orange", alpha=0.15,
                   label=f"edge of stability: {stable:.3g} – {smallest_not_stable:.3g}")
    if best is not None:
        ax.semilogx([lr[best]], [summaries[best].final_val_loss], "*", color="gold", markersize=18,
                    markeredgecolor="black", label=f"best: {lr[best]:.3g}")
    ax.set_xlabel("lr_max (log scale)")
    ax.set_ylabel("final validation loss")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title("Final validation loss against the learning rate")
    _save(fig, out_path)


def batch_size(inputs: ReportInputs, out_path: str | os.PathLike) -> None:
    """§7.2: validation loss against tokens and against wall clock at equal token budgets, and throughput."""
    runs = _sorted_by(inputs.runs("batch_size"), "train.batch_size")
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    _curves(axes[0], runs, "tokens", "val_loss", "tokens (M)", 1e6)
    _curves(axes[1], runs, "elapsed_s", "val_loss", "wall clock (min)", 60.0)
    axes[0].legend(fontsize=8)
    throughput = [read_run(d).tokens_per_s or 0.0 for d in runs.values()]
    axes[2].bar([label.split("= ")[1] for label in runs], throughput)
    axes[2].set_xlabel("batch size")
    axes[2].set_ylabel("training tokens / s")
    fig.suptitle("Batch size at equal tokens")
    _save(fig, out_path)


def generation_grid(inputs: ReportInputs, out_path: str | os.PathLike) -> None:
    """§7.2 `generate`: distinct-2 and the repetition rate of samples against temperature, one line per top-p."""
    summary = grid_summary(pd.read_csv(inputs.file("generation_grid")))
    panels = (("distinct_2", "distinct-2 (higher: more varied)"),
              ("repetition_4", "repeated 4-grams (lower: fewer loops)"), ("new_tokens", "new tokens per sample"))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for top_p, group in summary.groupby("top_p"):
        for ax, (column, label) in zip(axes, panels, strict=True):
            ax.plot(group.temperature, group[column], "o-", label=f"top-p {top_p:g}")
            ax.set_xlabel("temperature")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Sample quality proxies over the temperature × top-p grid")
    _save(fig, out_path)


def ablation(key: str, value: str):
    """A figure for one ablation deliverable: the baseline and every ablation variant with `key` = `value`."""

    def plot(inputs: ReportInputs, out_path: str | os.PathLike) -> None:
        runs = inputs.runs("ablations")
        chosen = {label: d for label, d in runs.items()
                  if label == inputs.baseline or read_run(d).config_value(key) == value}
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        _curves(axes[0], chosen, "step", "train_loss", "step")
        _curves(axes[1], chosen, "step", "val_loss", "step")
        axes[0].legend(fontsize=8)
        fig.suptitle(f"Ablation {key} = {value} against the baseline")
        _save(fig, out_path)

    return plot


def main_runs(inputs: ReportInputs, out_path: str | os.PathLike) -> None:
    """§7.4: the main runs' validation loss against tokens, in nats per token of each run's own tokenizer and in
    bits per byte of text (which compares across tokenizers)."""
    members = inputs.members("main")
    runs = {label: d for label, _, _, d in members}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    _curves(axes[0], runs, "tokens", "val_loss", "tokens (M)", 1e6)
    axes[0].set_ylabel("validation loss (nats per token)")
    ratios = {}
    for label, experiment, _, _ in members:
        dataset = inputs.experiment_datasets.get(experiment)
        ratios[label] = bytes_per_token(inputs.file(f"valid_text/{dataset}"), inputs.file(f"valid_tokens/{dataset}"))
    _curves(axes[1], runs, "tokens", "val_loss", "tokens (M)", 1e6,
            transforms={label: (lambda loss, r=r: bits_per_byte(loss, r)) for label, r in ratios.items()})
    axes[1].set_ylabel("validation loss (bits per byte of text)")
    if inputs.synthetic(inputs.datasets_of("main")) is False and "tinystories" in inputs.datasets_of("main"):
        axes[0].axhline(TINYSTORIES_TARGET, color="grey", linestyle=":",
                        label=f"TinyStories target {TINYSTORIES_TARGET:g}")
    axes[0].legend(fontsize=8)
    fig.suptitle("Main runs: TinyStories and OpenWebText")
    _save(fig, out_path)


def leaderboard(inputs: ReportInputs, out_path: str | os.PathLike) -> None:
    """§7.5: validation loss against the wall clock of the whole job (start-up, evaluation and checkpoints
    included), the final validation as a star at the job's end, with the wall-clock budget (and, on course data,
    the handout's baseline) marked."""
    runs = inputs.runs("leaderboard")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _curves(ax, runs, "job_s", "val_loss", "wall clock of the whole job (min)", 60.0)
    for run_dir in runs.values():
        summary = read_run(run_dir)
        if summary.final_val_loss is not None:
            ax.plot(summary.job.total_s / 60, summary.final_val_loss, "*", color="black", markersize=12)
    budgets = {read_run(d).config_value("train.wall_clock_budget_s") for d in runs.values()} - {0}
    for budget in budgets:
        ax.axvline(budget / 60, color="grey", linestyle=":", label=f"budget {budget / 60:g} min")
    if inputs.synthetic(inputs.datasets_of("leaderboard")) is False:
        ax.axhline(LEADERBOARD_BASELINE, color="tab:red", linestyle="--",
                   label=f"baseline to beat: {LEADERBOARD_BASELINE:.1f}")
    ax.legend(fontsize=8)
    ax.set_title("Leaderboard: validation loss within the wall-clock budget")
    _save(fig, out_path)
