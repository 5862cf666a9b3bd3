"""Choosing from finished runs (handout §7.2): the best value of a sweep, and, for a sweep that searches, the next
rates to train. Pure functions over run outcomes; the workflow's `plan_sweep` and `select_best` rules call them and
write their JSON files, which everything else reads back through `read_plan`/`read_selection`.

Two brackets, each defined once here. The *optimum* (`locate_optimum`): the best stable value and its nearest tried
neighbours on both sides; it is bracketed when both neighbours exist within the target factor of it (they are no
better: the best is the lowest loss among stable runs, and a run that is not stable is never better). The *edge of
stability* (`locate_edge`): the largest stable value and the smallest value above it that is not stable (unstable
or diverged, cs336lm.training.divergence).
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
from cs336lm.training.divergence import OUTCOMES, STABLE
from cs336lm.training.summary import finished, read_summary

SELECTION_VERSION = 2
CHOICE_RULE = ("lowest final validation loss among the stable runs (neither unstable nor diverged); a tie goes to "
               "the smaller value")
OPTIMUM, EDGE = "optimum", "edge"  # what a round's value is for


class SelectionError(ValueError):
    """Nothing can be chosen, or a selection/plan file is unreadable; the message names the sweep or the file."""


@dataclass(frozen=True)
class Outcome:
    """One finished run of a sweep: the value it tried and how it ended (status ok | unstable | diverged |
    out_of_memory; ok is stable)."""

    variant: str
    value: float
    status: str
    final_val_loss: float | None
    run_dir: str

    @property
    def stable(self) -> bool:
        return finished(self)

    @property
    def kind(self) -> str:
        """stable | unstable | diverged | out_of_memory, as the report and figures name it (unmeasured: it trained
        stably but has no finite final validation loss)."""
        if self.status == STABLE:
            return "stable" if self.stable else "unmeasured"
        return OUTCOMES.get(self.status, self.status)


@dataclass(frozen=True)
class EdgeSearch:
    """How a sweep searches after its grid, round by round, for two brackets at once, never more than `max_runs`
    runs beyond the grid in all. The optimum: while the best stable value is the smallest or the largest tried,
    try it ÷ or × `step`; then halve (geometrically) the wider gap to a neighbour until both are within
    `optimum_factor`. The edge: while every value above the largest stable one is untried, try the largest value
    × `step`; then halve the gap between the largest stable and the smallest not-stable value until they are
    within `factor`. When one run is left, the optimum comes first: every run that takes the sweep's value
    depends on it."""

    factor: float = 2.0
    step: float = 3.0
    max_runs: int = 6
    optimum_factor: float = 2.0


@dataclass(frozen=True)
class Edge:
    """The bracket around the edge of stability: the largest stable value and the smallest one above it that is
    not stable (unstable or diverged)."""

    largest_stable: float | None
    smallest_not_stable: float | None
    factor: float | None  # smallest_not_stable / largest_stable, when both exist
    target_factor: float


@dataclass(frozen=True)
class Optimum:
    """The bracket around the best value: the best stable value and the nearest tried values below and above it
    (None where nothing was tried on that side)."""

    best: float | None
    below: float | None
    above: float | None
    target_factor: float

    @property
    def bracketed(self) -> bool:
        return (self.best is not None and self.below is not None and self.above is not None
                and self.best / self.below <= self.target_factor and self.above / self.best <= self.target_factor)

    def describe(self) -> str:
        """The bracket in words, for selection files and the report."""
        if self.best is None:
            return "no stable run, so no optimum"
        sides = [f"{self.below:g} below (factor {self.best / self.below:.3g})" if self.below else "nothing below",
                 f"{self.above:g} above (factor {self.above / self.best:.3g})" if self.above else "nothing above"]
        verdict = ("bracketed" if self.bracketed
                   else "not bracketed" if self.below and self.above else "at an end of the range tried")
        return (f"the best, {self.best:g}, has {' and '.join(sides)}: {verdict} "
                f"(target factor {self.target_factor:g})")


@dataclass(frozen=True)
class Plan:
    """One round of a search: the values to train next (empty once the search is over; for a tuned variant, the
    factors of its next candidates), what each is for (`purposes[i]`: optimum, edge or both, joined by `+`) and
    why."""

    experiment: str
    round: int
    next: tuple[float, ...]
    purposes: tuple[str, ...]
    reason: str
    edge: Edge
    optimum: Optimum


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
    optimum: Optimum | None = None  # for a sweep that searched, or a tuned variant
    rounds: tuple[Plan, ...] = ()  # the search's rounds, for a sweep that searched


def read_outcomes(runs: Mapping[str, str], key: str) -> list[Outcome]:
    """The outcome of each finished run {variant: run dir}, its value of `key` read from its summary's config."""
    outcomes = []
    for variant, run_dir in runs.items():
        summary = read_summary(os.path.join(run_dir, "summary.json"))
        outcomes.append(Outcome(variant, summary.config_value(key), summary.status, summary.final_val_loss, run_dir))
    return outcomes


def locate_edge(outcomes: Iterable[Outcome], target_factor: float) -> Edge:
    """The top of the stable range: the largest stable value and the smallest one above it that is not stable.
    Values below it that are not stable (a rate too small to learn anything counts as diverged too) and runs that
    ran out of memory do not move the edge."""
    outcomes = list(outcomes)
    largest_stable = max((o.value for o in outcomes if o.stable), default=None)
    smallest = min((o.value for o in outcomes if o.kind in ("unstable", "diverged")
                    and (largest_stable is None or o.value > largest_stable)), default=None)
    factor = None if largest_stable is None or smallest is None else smallest / largest_stable
    return Edge(largest_stable, smallest, factor, target_factor)


def locate_optimum(outcomes: Iterable[Outcome], target_factor: float) -> Optimum:
    """The best stable value (lowest final validation loss, ties to the smaller value) and its nearest tried
    neighbours; runs that ran out of memory were not tried."""
    tried = sorted({o.value for o in outcomes if o.status != "out_of_memory"})
    best = _best(outcomes)
    if best is None:
        return Optimum(None, None, None, target_factor)
    below = max((v for v in tried if v < best.value), default=None)
    above = min((v for v in tried if v > best.value), default=None)
    return Optimum(best.value, below, above, target_factor)


def plan_next(experiment: str, round: int, outcomes: Sequence[Outcome], search: EdgeSearch, extra_runs: int) -> Plan:
    """The next values of a search that has trained `outcomes`, `extra_runs` of them beyond its grid: one for
    the optimum and one for the edge while each is open and the bound allows (one value when both want it)."""
    edge = locate_edge(outcomes, search.factor)
    optimum = locate_optimum(outcomes, search.optimum_factor)
    tried = {o.value for o in outcomes}
    if optimum.best is None:
        return Plan(experiment, round, (), (), "no value trained stably: add smaller values to the grid", edge,
                    optimum)
    wanted = {}  # value -> purposes, optimum first
    reasons = []
    for purpose, (value, reason) in ((OPTIMUM, _optimum_step(optimum, tried, search)),
                                     (EDGE, _edge_step(edge, tried, search))):
        reasons.append(f"{purpose}: {reason}")
        if value is not None:
            wanted.setdefault(value, []).append(purpose)
    left = search.max_runs - extra_runs
    if len(wanted) > left:
        reasons.append(f"stopped at the bound of {search.max_runs} runs beyond the grid" if left <= 0
                       else f"{left} run left of the bound of {search.max_runs}: the optimum's first")
    chosen = list(wanted.items())[:max(left, 0)]
    return Plan(experiment, round, tuple(v for v, _ in chosen), tuple("+".join(p) for _, p in chosen),
                "; ".join(reasons), edge, optimum)


def plan_tuning(sweep: str, round: int, outcomes: Sequence[Outcome], factors: Mapping[str, float], max_runs: int,
                extra_runs: int) -> Plan:
    """The next factor of a tuned variant whose candidates {variant: factor} trained `outcomes`, `extra_runs` of
    them beyond its configured factors: past the end where the best stable candidate sits, by the spacing of the
    factors there, until the best has tried neighbours on both sides (a neighbour that is not stable is no better)
    or `max_runs` were added."""
    ordered = sorted(set(factors.values()))
    target = max(b / a for a, b in zip(ordered, ordered[1:], strict=False))
    optimum, edge = locate_optimum(outcomes, target), locate_edge(outcomes, target)
    factor_of = {o.value: factors[o.variant] for o in outcomes}
    value, reason = None, ""
    if optimum.best is None:
        reason = "no candidate trained stably: lower the tuning factors"
    elif optimum.below is not None and optimum.above is not None:
        reason = f"{optimum.describe()}: an interior optimum"
    elif extra_runs >= max_runs:
        reason = (f"{optimum.describe()}; stopped at the bound of {max_runs} runs beyond the configured factors, so "
                  "the optimum may lie further out")
    elif optimum.below is None:
        value = _round(ordered[0] / (ordered[1] / ordered[0]))
        reason = (f"the best, factor {factor_of[optimum.best]:g} ({optimum.best:g}), is the smallest tried: "
                  f"extending down to factor {value:g}")
    else:
        value = _round(ordered[-1] * ordered[-1] / ordered[-2])
        reason = (f"the best, factor {factor_of[optimum.best]:g} ({optimum.best:g}), is the largest tried: "
                  f"extending up to factor {value:g}")
    return Plan(sweep, round, () if value is None else (value,), () if value is None else (OPTIMUM,), reason, edge,
                optimum)


def _optimum_step(optimum: Optimum, tried: set[float], search: EdgeSearch) -> tuple[float | None, str]:
    """The value that narrows the optimum's bracket next, or None, and why."""
    best, below, above, factor = optimum.best, optimum.below, optimum.above, optimum.target_factor
    if optimum.bracketed:
        return None, optimum.describe()
    if below is None:
        value = _round(best / search.step)
        return value, f"the best, {best:g}, is the smallest value tried: extending down to {value:g}"
    if above is None:
        value = _round(best * search.step)
        return value, f"the best, {best:g}, is the largest value tried: extending up to {value:g}"
    low, high = (below, best) if best / below >= above / best else (best, above)
    value = _round(math.sqrt(low * high))
    if value in tried or not low < value < high:
        return None, f"{optimum.describe()}; the gap {low:g}–{high:g} cannot be split at three significant digits"
    return value, f"the best, {best:g}, is {high / low:.3g}× from {below if low == below else above:g} (target " \
                  f"{factor:g}): trying {value:g}"


def _edge_step(edge: Edge, tried: set[float], search: EdgeSearch) -> tuple[float | None, str]:
    """The value that narrows the edge's bracket next, or None, and why."""
    if edge.factor is not None and edge.factor <= search.factor:
        return None, (f"the edge lies between {edge.largest_stable:g} (stable) and {edge.smallest_not_stable:g} "
                      f"(not stable), within the target factor {search.factor:g}")
    if edge.smallest_not_stable is None:
        value = _round(max(tried) * search.step)
        return value, f"every value above {edge.largest_stable:g} is stable or untried: extending to {value:g}"
    value = _round(math.sqrt(edge.largest_stable * edge.smallest_not_stable))
    if value in tried or not edge.largest_stable < value < edge.smallest_not_stable:
        return None, "the edge's bracket cannot be split at three significant digits"
    return value, f"refining the edge between {edge.largest_stable:g} and {edge.smallest_not_stable:g}: trying " \
                  f"{value:g}"


def _best(outcomes: Iterable[Outcome]) -> Outcome | None:
    return min((o for o in outcomes if o.stable), key=lambda o: (o.final_val_loss, o.value), default=None)


def choose_best(sweep: str, experiment: str, key: str, outcomes: Sequence[Outcome], edge: Edge | None = None,
                optimum: Optimum | None = None, rounds: Sequence[Plan] = ()) -> Selection:
    """The stable run with the lowest final validation loss (ties: the smaller value), and a sentence saying why."""
    stable = sorted((o for o in outcomes if o.stable), key=lambda o: (o.final_val_loss, o.value))
    if not stable:
        statuses = ", ".join(f"{o.variant}: {o.kind}" for o in outcomes) or "no runs"
        raise SelectionError(f"no run of {sweep} trained stably ({statuses}), so there is no best "
                             f"{key}: add smaller values to experiments.{experiment}")
    best = stable[0]
    why = (f"{key} = {best.value:g} ({best.variant}) reached the lowest final validation loss, "
           f"{best.final_val_loss:.4f}, of the {len(stable)} stable runs")
    if len(stable) > 1:
        why += f" (next: {stable[1].value:g} at {stable[1].final_val_loss:.4f})"
    for kind in ("unstable", "diverged"):
        values = sorted(o.value for o in outcomes if o.kind == kind)
        if values:
            why += f"; {len(values)} {kind} ({', '.join(f'{v:g}' for v in values)})"
    if optimum is not None:
        why += f"; {optimum.describe()}"
    if edge is not None and edge.factor is not None:
        why += (f"; the edge of stability lies between {edge.largest_stable:g} and {edge.smallest_not_stable:g} "
                f"(factor {edge.factor:.3g}, target {edge.target_factor:g})")
    return Selection(sweep, experiment, key, best.value, best.variant, best.run_dir, best.final_val_loss,
                     CHOICE_RULE, why + ".", tuple(sorted(outcomes, key=lambda o: o.value)), edge, optimum,
                     tuple(rounds))


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
                            "edge": None if raw["edge"] is None else Edge(**raw["edge"]),
                            "optimum": None if raw["optimum"] is None else Optimum(**raw["optimum"]),
                            "rounds": tuple(_plan(r) for r in raw["rounds"])})
    except (KeyError, TypeError) as exc:
        raise SelectionError(f"{os.fspath(path)} is not a valid selection file ({exc}); delete it to rerun "
                             "its select_best job") from None


def write_plan(path: str | os.PathLike, plan: Plan) -> None:
    atomic_write_text(path, json.dumps(dataclasses.asdict(plan), indent=2) + "\n")


def read_plan(path: str | os.PathLike) -> Plan:
    raw = _read_json(path, "sweep plan")
    try:
        return _plan(raw)
    except (KeyError, TypeError) as exc:
        raise SelectionError(f"{os.fspath(path)} is not a valid sweep plan ({exc}); delete it to rerun its "
                             "plan_sweep job") from None


def _plan(raw: dict[str, Any]) -> Plan:
    return Plan(**{**_fields(raw, Plan), "next": tuple(raw["next"]), "purposes": tuple(raw["purposes"]),
                   "edge": Edge(**raw["edge"]), "optimum": Optimum(**raw["optimum"])})


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
