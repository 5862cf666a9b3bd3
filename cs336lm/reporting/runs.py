"""Runs as the report reads them: each run directory's summary (the typed `summary.json` of cs336lm.summary) and
its metrics lines, plus the few judgements every section shares (finished or not, best run, outcome in words)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd

from cs336lm.metrics import read_metrics

Runs = Mapping[str, str | os.PathLike]  # label -> run directory

# Fields of the summary contract that older summary.json files may lack.
_SUMMARY_DEFAULTS = {"stopped_early": None, "final_val_loss": None, "final_val_tokens": None, "best_val_loss": None,
                     "final_train_loss": None, "num_iterations": None, "eval_time_s": None, "tokens_per_s": None,
                     "mfu": None, "flops_per_token": None, "implementation": {}, "dataset": {}, "selected": {},
                     "device": None}


def read_run(run_dir: str | os.PathLike) -> Any:
    """The run's summary, with attribute access to the fields of the summary.json contract."""
    with open(Path(run_dir) / "summary.json", encoding="utf-8") as f:
        return SimpleNamespace(**{**_SUMMARY_DEFAULTS, **json.load(f)})


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
    """Trained without diverging and has a finite final validation loss."""
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
    return f"final validation loss {loss_text} after {summary.steps:,} steps"
