"""Runs as the report reads them: each run directory's summary (the typed `summary.json` of cs336lm.training.summary)
and its metrics lines, plus the few judgements every section shares (finished or not, best run, outcome in words)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cs336lm.atomic import atomic_path
from cs336lm.experiments.selection import EdgeSearch, Outcome, Selection, locate_edge, read_selection
from cs336lm.layout import COMBINATION_SUFFIX, NOISE_SUFFIX
from cs336lm.reporting.datasets import read_json
from cs336lm.training.divergence import statement
from cs336lm.training.identity import SEED_KEY, run_identity
from cs336lm.training.metrics import read_metrics
from cs336lm.training.summary import RunSummary, finished, read_summary

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
    return statement(summary.run_config.train.divergence_factor)


def stability_edge(summaries: Mapping[str, Any], key: str = "optim.lr_max") -> tuple[float | None, float | None]:
    """(largest stable value, smallest not-stable value above it) of a sweep over `key`, by
    cs336lm.experiments.selection's one definition of the edge, so the report's text, its figure and the sweep's
    selection file agree."""
    edge = locate_edge([Outcome(label, s.config_value(key), s.status, s.final_val_loss, "")
                        for label, s in summaries.items()], EdgeSearch().factor)
    return edge.largest_stable, edge.smallest_not_stable


def seed_groups(summaries: Mapping[Any, Any]) -> list[list[Any]]:
    """The labels of finished runs that repeat one run with other seeds (cs336lm.training.identity), grouped, for
    groups of at least two seeds (a run shown under two names counts once)."""
    groups: dict[tuple, dict[int, Any]] = {}
    for label, s in summaries.items():
        if finished(s):
            key = run_identity(s.run_config, ignore={SEED_KEY})
            groups.setdefault(key, {}).setdefault(s.run_config.train.seed, label)
    return [list(by_seed.values()) for by_seed in groups.values() if len(by_seed) > 1]


@dataclass(frozen=True)
class LoggedRun:
    """One trained run directory of the experiment log: the name it trained under, every other name the report
    shows it as (an identical run, a sweep's winner) and, for a tuning candidate, the sweep it ran for and whether
    that sweep chose it."""

    run_dir: str
    experiment: str
    variant: str
    shown_as: tuple[str, ...] = ()
    tuning: str = ""


def logged_runs(experiments: Mapping[str, Runs], selections: Sequence[Selection] = ()) -> list[LoggedRun]:
    """Every trained directory once, in config order: the report's runs {experiment: {variant: run dir}} and the
    candidates of every selection (a tuned variant's losing rates train too, under their own names). Several names
    that share a directory (dedup, a sweep's winner) become one entry naming all of them."""
    names: dict[str, list[tuple[str, str]]] = {}
    tuning: dict[str, str] = {}
    by_sweep = {sel.sweep: sel for sel in selections}

    def add(run_dir: str | os.PathLike, experiment: str, variant: str) -> None:
        entry = names.setdefault(os.fspath(run_dir), [])
        if (experiment, variant) not in entry:
            entry.append((experiment, variant))

    def add_candidates(sel: Selection) -> None:
        for c in sel.candidates:
            add(c.run_dir, sel.experiment, c.variant)
            chosen = os.fspath(c.run_dir) == os.fspath(sel.run_dir)
            tuning.setdefault(os.fspath(c.run_dir), f"candidate of `{sel.sweep}`: "
                              + ("chosen" if chosen else "lost" if c.stable else f"lost ({c.status})"))

    for experiment, variants in experiments.items():
        for variant, run_dir in variants.items():
            sel = by_sweep.pop(f"{experiment}/{variant}", None)
            if sel is not None:
                add_candidates(sel)
            add(run_dir, experiment, variant)
    for sel in by_sweep.values():
        if "/" in sel.sweep:  # a tuned variant the report does not show: its candidates still trained
            add_candidates(sel)
    entries = []
    for run_dir, shown in names.items():
        own = (Path(run_dir).parent.name, Path(run_dir).name)  # runs/<experiment>/<variant>: its own name
        trained = own if own in shown else shown[0]
        others = tuple(f"{e}/{v}" for e, v in shown if (e, v) != trained)
        entries.append(LoggedRun(run_dir, *trained, others, tuning.get(run_dir, "")))
    return entries


def runs_table(experiments: Mapping[str, Runs], selections: Sequence[Selection] = ()) -> pd.DataFrame:
    """The experiment log: one row per trained run directory (see logged_runs) with its outcome and costs."""
    rows = []
    for entry in logged_runs(experiments, selections):
        s, request = read_run(entry.run_dir), read_request(entry.run_dir)
        rows.append({
            "experiment": entry.experiment, "variant": entry.variant, "run_dir": entry.run_dir,
            "shown_as": "; ".join(entry.shown_as),
            "tuning": entry.tuning, "status": s.status,
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


def read_selections(selections_dir: str | os.PathLike) -> list[Selection]:
    """Every selection file under `selections_dir` (`<sweep>.json`, a tuned variant's as
    `<experiment>/<variant>.json`), experiments' sweeps first: their choices feed the tuned ones. The noise floors
    and combinations written beside them are not selections."""
    paths = sorted((p for p in Path(selections_dir).rglob("*.json")
                    if not p.name.endswith((NOISE_SUFFIX, COMBINATION_SUFFIX))),
                   key=lambda p: (len(p.relative_to(selections_dir).parts), p))
    return [read_selection(p) for p in paths]


def write_runs_table(experiments: Mapping[str, Runs], csv_path: str | os.PathLike,
                     selections: Sequence[Selection] = ()) -> None:
    with atomic_path(csv_path) as tmp:
        runs_table(experiments, selections).to_csv(tmp, index=False)
