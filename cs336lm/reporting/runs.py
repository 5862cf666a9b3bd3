"""Runs as the report reads them: each run directory's summary (the typed `summary.json` of cs336lm.training.summary)
and
its metrics lines, plus the few judgements every section shares (finished or not, best run, outcome in words)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from cs336lm.atomic import atomic_path
from cs336lm.experiments.selection import EdgeSearch, Outcome, locate_edge
from cs336lm.reporting.datasets import read_json
from cs336lm.training.divergence import statement
from cs336lm.training.metrics import read_metrics
from cs336lm.training.summary import RunSummary, read_summary

Runs = Mapping[str, str | os.PathLike]  # label -> run directory

def read_run(run_dir: str | os.PathLike) -> RunSummary:
    """The run's summary (cs336lm.training.summary checks every field; a stale or hand-edited file fails naming it)."""
    return read_summary(Path(run_dir) / "summary.json")


def read_request(run_dir: str | os.PathLike) -> dict[str, Any]:
    """What the workflow asked of the scheduler for the run's last attempt (`request.json`: requested_minutes, and
    resumed: whether it continued an earlier, interrupted one), or {} for a run trained outside it."""
    path = Path(run_dir) / "request.json"
    return read_json(path) if path.exists() else {}


def load_metrics(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The run's metrics lines as a frame (non-finite losses are null in the file and NaN here)."""
    frame = pd.DataFrame.from_records(read_metrics(Path(run_dir) / "metrics.jsonl"))
    for column in ("val_loss", "train_loss"):
        if column not in frame:
            frame[column] = float("nan")
    return frame.astype({"val_loss": float, "train_loss": float}) if len(frame) else frame


def config_value(summary: Any, key: str) -> Any:
    """A dotted key (`optim.lr_max`) of the run's resolved config."""
    section, name = key.split(".")
    return summary.config[section][name]


def finished(summary: Any) -> bool:
    """Trained stably (neither unstable nor diverged, cs336lm.training.divergence) with a finite final validation
    loss: the runs a comparison or a choice may use."""
    loss = summary.final_val_loss
    return summary.status == "ok" and loss is not None and math.isfinite(loss)


def best_run(summaries: Mapping[str, Any]) -> str | None:
    """The label of the finished run with the lowest final validation loss."""
    losses = {label: s.final_val_loss for label, s in summaries.items() if finished(s)}
    return min(losses, key=losses.get) if losses else None


def outcome(summary: Any) -> str:
    """`final validation loss 1.234 after 500 steps` or `diverged at step 120`: a run's ending in words."""
    if summary.status == "diverged":
        return f"diverged at step {summary.steps:,}"
    loss = summary.final_val_loss
    loss_text = f"{loss:.4g}" if loss is not None and math.isfinite(loss) else "not measured"
    unstable = f"unstable ({summary.instability}), " if summary.status == "unstable" else ""
    return f"{unstable}final validation loss {loss_text} after {summary.steps:,} steps"


def divergence_rule(summary: RunSummary) -> str:
    """The rule that marked runs as diverged, in one sentence (cs336lm.training.divergence, at the run's factor)."""
    return statement(summary.config["train"]["divergence_factor"])


def stability_edge(summaries: Mapping[str, Any], key: str = "optim.lr_max") -> tuple[float | None, float | None]:
    """(largest stable value, smallest not-stable value above it) of a sweep over `key`, by
    cs336lm.experiments.selection's one definition of the edge, so the report's text, its figure and the sweep's
    selection file agree."""
    edge = locate_edge([Outcome(label, config_value(s, key), s.status, s.final_val_loss, "")
                        for label, s in summaries.items()], EdgeSearch().factor)
    return edge.largest_stable, edge.smallest_not_stable


def _training_config(summary: Any) -> dict[str, Any]:
    """The resolved config without the seed and without settings that do not change what is learned."""
    flat = {f"{s}.{k}": v for s, values in summary.config.items() for k, v in values.items()}
    ignored = {"train.seed", "train.device", "train.log_interval", "train.checkpoint_interval",
               "train.checkpoint_minutes"}
    return {k: v for k, v in flat.items() if k not in ignored}


def seed_groups(summaries: Mapping[Any, Any]) -> list[list[Any]]:
    """The labels of finished runs whose configs differ only in `train.seed`, grouped, for groups of at least two
    seeds (a run shown under two names counts once)."""
    groups: dict[Any, dict[int, Any]] = {}
    for label, s in summaries.items():
        if finished(s):
            key = repr(sorted(_training_config(s).items()))
            groups.setdefault(key, {}).setdefault(s.config["train"]["seed"], label)
    return [list(by_seed.values()) for by_seed in groups.values() if len(by_seed) > 1]


def runs_table(experiments: Mapping[str, Runs]) -> pd.DataFrame:
    """The experiment log: one row per run of {experiment: {variant: run dir}} with its outcome and costs."""
    rows = []
    for experiment, variants in experiments.items():
        for variant, run_dir in variants.items():
            s, request = read_run(run_dir), read_request(run_dir)
            rows.append({
                "experiment": experiment, "variant": variant, "status": s.status,
                "stopped_early": s.stopped_early or "", "final_val_loss": s.final_val_loss,
                "best_val_loss": s.best_val_loss, "final_train_loss": s.final_train_loss, "steps": s.steps,
                "tokens": s.tokens, "wall_time_s": s.wall_time_s, "tokens_per_s": s.tokens_per_s, "mfu": s.mfu,
                "parameters": s.parameters.total, "non_embedding_parameters": s.parameters.non_embedding,
                "device": s.device or "",
                # Training and evaluation time against the scheduler's limit (start-up and saving aside).
                "used_minutes": (s.wall_time_s + s.eval_time_s) / 60,
                "requested_minutes": request.get("requested_minutes"), "resumed": request.get("resumed"),
            })
    return pd.DataFrame(rows)


def write_runs_table(experiments: Mapping[str, Runs], csv_path: str | os.PathLike) -> None:
    with atomic_path(csv_path) as tmp:
        runs_table(experiments).to_csv(tmp, index=False)
