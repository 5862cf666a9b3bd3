"""Choosing from finished runs (handout §7.2): the best value of a sweep, and, for a sweep that looks for the edge of
stability, the next rate to train. Pure functions over run outcomes; the workflow's `plan_sweep` and `select_best`
rules call them and write their JSON files, which everything else reads back through `read_plan`/`read_selection`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cs336lm.atomic import atomic_write_text
from cs336lm.training.summary import finished, read_summary

SELECTION_VERSION = 1
CHOICE_RULE = "lowest final validation loss among the runs that did not diverge; a tie goes to the smaller value"


class SelectionError(ValueError):
    """Nothing can be chosen, or a selection/plan file is unreadable; the message names the sweep or the file."""


@dataclass(frozen=True)
class Outcome:
    """One finished run of a sweep: the value it tried and how it ended (status ok | diverged | out_of_memory)."""

    variant: str
    value: float
    status: str
    final_val_loss: float | None
    run_dir: str

    @property
    def stable(self) -> bool:
        return finished(self)


@dataclass(frozen=True)
class EdgeSearch:
    """How a sweep looks for the edge of stability after its grid: while no value has diverged, try the largest
    one × `step`; then halve the gap (geometrically) between the largest stable and the smallest diverged value
    until they are within `factor`; never more than `max_runs` runs beyond the grid."""

    factor: float = 2.0
    step: float = 3.0
    max_runs: int = 6


@dataclass(frozen=True)
class Edge:
    """The bracket around the edge of stability: the largest stable value and the smallest diverged one above it."""

    largest_stable: float | None
    smallest_diverged: float | None
    factor: float | None  # smallest_diverged / largest_stable, when both exist
    target_factor: float


@dataclass(frozen=True)
class Plan:
    """One round of an edge search: the values to train next (empty once the search is over) and why."""

    experiment: str
    round: int
    next: tuple[float, ...]
    reason: str
    edge: Edge


@dataclass(frozen=True)
class Selection:
    """The winner of a sweep and why it won. `sweep` names what was compared (an experiment, or one tuned variant
    of it as `experiment/variant`); `experiment` holds the compared runs; `run_dir` is where the winner trained."""

    sweep: str
    experiment: str
    key: str
    value: float
    variant: str
    run_dir: str
    final_val_loss: float
    rule: str
    why: str
    candidates: tuple[Outcome, ...]
    edge: Edge | None


def read_outcomes(runs: Mapping[str, str], key: str) -> list[Outcome]:
    """The outcome of each finished run {variant: run dir}, its value of `key` read from its summary's config."""
    outcomes = []
    for variant, run_dir in runs.items():
        summary = read_summary(os.path.join(run_dir, "summary.json"))
        outcomes.append(Outcome(variant, summary.config_value(key), summary.status, summary.final_val_loss, run_dir))
    return outcomes


def locate_edge(outcomes: Iterable[Outcome], target_factor: float) -> Edge:
    """The top of the stable range: the largest stable value and the smallest diverged one above it. Diverged
    values below it (a rate too small to learn anything counts as diverged too) and runs that ran out of memory
    do not move the edge."""
    outcomes = list(outcomes)
    largest_stable = max((o.value for o in outcomes if o.stable), default=None)
    smallest_diverged = min((o.value for o in outcomes if o.status == "diverged"
                             and (largest_stable is None or o.value > largest_stable)), default=None)
    factor = None if largest_stable is None or smallest_diverged is None else smallest_diverged / largest_stable
    return Edge(largest_stable, smallest_diverged, factor, target_factor)


def plan_next(experiment: str, round: int, outcomes: Sequence[Outcome], search: EdgeSearch, extra_runs: int) -> Plan:
    """The next value for an edge search that has trained `outcomes`, `extra_runs` of them beyond its grid."""
    edge = locate_edge(outcomes, search.factor)
    tried = {o.value for o in outcomes}
    value, reason = None, ""
    if edge.largest_stable is None:
        reason = "no value trained without diverging: add smaller values to the grid"
    elif edge.factor is not None and edge.factor <= search.factor:
        reason = (f"the edge lies between {edge.largest_stable:g} (stable) and {edge.smallest_diverged:g} "
                  f"(diverged), within the target factor {search.factor:g}")
    elif extra_runs >= search.max_runs:
        reason = f"stopped at the bound of {search.max_runs} runs beyond the grid"
    elif edge.smallest_diverged is None:
        value = _round(max(tried) * search.step)
        reason = f"no value diverged yet: extending to {value:g}"
    else:
        value = _round(math.sqrt(edge.largest_stable * edge.smallest_diverged))
        reason = f"refining between {edge.largest_stable:g} and {edge.smallest_diverged:g}: trying {value:g}"
        if value in tried or not edge.largest_stable < value < edge.smallest_diverged:
            value, reason = None, "the bracket cannot be split at three significant digits"
    return Plan(experiment, round, () if value is None else (value,), reason, edge)


def choose_best(sweep: str, experiment: str, key: str, outcomes: Sequence[Outcome], edge: Edge | None = None
                ) -> Selection:
    """The stable run with the lowest final validation loss (ties: the smaller value), and a sentence saying why."""
    stable = sorted((o for o in outcomes if o.stable), key=lambda o: (o.final_val_loss, o.value))
    if not stable:
        statuses = ", ".join(f"{o.variant}: {o.status}" for o in outcomes) or "no runs"
        raise SelectionError(f"no run of {sweep} finished without diverging ({statuses}), so there is no best "
                             f"{key}: add smaller values to experiments.{experiment}")
    best = stable[0]
    why = (f"{key} = {best.value:g} ({best.variant}) reached the lowest final validation loss, "
           f"{best.final_val_loss:.4f}, of the {len(stable)} runs that did not diverge")
    if len(stable) > 1:
        why += f" (next: {stable[1].value:g} at {stable[1].final_val_loss:.4f})"
    diverged = sorted(o.value for o in outcomes if o.status == "diverged")
    if diverged:
        why += f"; {len(diverged)} diverged ({', '.join(f'{v:g}' for v in diverged)})"
    if edge is not None and edge.factor is not None:
        why += (f"; the edge of stability lies between {edge.largest_stable:g} and {edge.smallest_diverged:g} "
                f"(factor {edge.factor:.3g}, target {edge.target_factor:g})")
    return Selection(sweep, experiment, key, best.value, best.variant, best.run_dir, best.final_val_loss,
                     CHOICE_RULE, why + ".", tuple(sorted(outcomes, key=lambda o: o.value)), edge)


def _round(value: float) -> float:
    # Three significant digits: the value names its run (`lr_max~0.0173`) and must read back as the same float.
    return float(f"{value:.3g}")


# ---- files -----------------------------------------------------------------------------------------------

def write_selection(path: str | os.PathLike, selection: Selection) -> None:
    atomic_write_text(path, json.dumps({"selection_version": SELECTION_VERSION, **dataclasses.asdict(selection)},
                                       indent=2) + "\n")


def read_selection(path: str | os.PathLike) -> Selection:
    """The selection in `path`; SelectionError names the file and what is wrong with it."""
    raw = _read_json(path, "selection")
    if raw.get("selection_version") != SELECTION_VERSION:
        raise SelectionError(f"{os.fspath(path)} is not a version-{SELECTION_VERSION} selection file; rerun "
                             "its select_best job (delete the file)")
    try:
        return Selection(**{**_fields(raw, Selection), "candidates": tuple(Outcome(**c) for c in raw["candidates"]),
                            "edge": None if raw["edge"] is None else Edge(**raw["edge"])})
    except (KeyError, TypeError) as exc:
        raise SelectionError(f"{os.fspath(path)} is not a valid selection file ({exc}); delete it to rerun "
                             "its select_best job") from None


def write_plan(path: str | os.PathLike, plan: Plan) -> None:
    atomic_write_text(path, json.dumps(dataclasses.asdict(plan), indent=2) + "\n")


def read_plan(path: str | os.PathLike) -> Plan:
    raw = _read_json(path, "sweep plan")
    try:
        return Plan(**{**_fields(raw, Plan), "next": tuple(raw["next"]), "edge": Edge(**raw["edge"])})
    except (KeyError, TypeError) as exc:
        raise SelectionError(f"{os.fspath(path)} is not a valid sweep plan ({exc}); delete it to rerun its "
                             "plan_sweep job") from None


def _read_json(path: str | os.PathLike, what: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except (OSError, ValueError) as exc:
        raise SelectionError(f"cannot read the {what} {os.fspath(path)}: {exc}") from exc
    if not isinstance(raw, dict):
        raise SelectionError(f"{os.fspath(path)} holds a {type(raw).__name__}, not a {what}")
    return raw


def _fields(raw: dict[str, Any], klass: type) -> dict[str, Any]:
    names = [f.name for f in dataclasses.fields(klass)]
    missing = [n for n in names if n not in raw]
    if missing:
        raise KeyError(", ".join(missing))
    return {n: raw[n] for n in names}
