"""Which modifications to combine (handout §7.5): each candidate modification of a candidates experiment against its
`baseline` variant at equal budget, judged with the experiment's noise floor (cs336lm.experiments.noise), and the
combination of those that helped. Pure functions over run outcomes; the workflow's `select_combination` rule calls
them and writes the JSON file that the runs which `combine` the experiment (and the report) read back.

The rule is the noise floor's own: a modification helped when its mean final validation loss over its seeds is
below the baseline's by more than the noise floor's resolution (RESOLVE_SIGMAS × √2 × σ, the resolution of two
single runs). The means over several seeds vary less than single runs, so the rule is conservative: a
modification is kept only when the gain would be resolved even between two single runs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cs336lm.atomic import atomic_write_text
from cs336lm.experiments.noise import NoiseFloor

COMBINATION_VERSION = 1
RULE = ("a modification helped when every seed of it was stable and its mean final validation loss is below the "
        "baseline's by more than the noise floor's resolution")


class CombinationError(ValueError):
    """Nothing to compare, or a combination file is unreadable; the message names the experiment or the file."""


@dataclass(frozen=True)
class Effect:
    """One candidate modification against the baseline: improvement = baseline mean − its mean (positive: better);
    `losses` has one final validation loss per seed, None for a seed that was not stable."""

    variant: str
    overrides: dict[str, Any]
    losses: list[float | None]
    mean: float | None
    improvement: float | None
    helped: bool


@dataclass(frozen=True)
class Combination:
    """What a candidates experiment found: the baseline's losses, each modification's effect, the noise floor it
    was judged against, and the merged overrides of the modifications that helped (what combining runs take)."""

    experiment: str
    rule: str
    sigma: float | None
    resolution: float | None
    baseline: list[float]
    baseline_mean: float
    effects: list[Effect]
    combined: list[str]  # the variants that helped, in config order
    overrides: dict[str, Any]
    why: str


def choose_combination(noise: NoiseFloor, baseline: Sequence[float | None],
                       candidates: Mapping[str, Sequence[float | None]],
                       overrides: Mapping[str, Mapping[str, Any]]) -> Combination:
    """Each candidate's effect against the baseline (final validation losses per seed, None: not stable), and the
    merged overrides of those that helped beyond the noise floor."""
    experiment = noise.experiment
    if not baseline or not _stable(baseline):
        raise CombinationError(f"the baseline of {experiment} has a seed that was not stable ({list(baseline)}), so "
                               "no modification can be judged against it")
    if noise.resolution is None:
        raise CombinationError(f"the noise floor of {experiment} is not measured (fewer than two stable seeds of "
                               "any variant), so no modification can be told from the seed noise")
    base_mean = statistics.fmean(baseline)
    effects = []
    for variant, losses in candidates.items():
        mean = statistics.fmean(losses) if losses and _stable(losses) else None
        improvement = None if mean is None else base_mean - mean
        helped = improvement is not None and improvement > 0 and bool(noise.resolved(improvement))
        effects.append(Effect(variant, dict(overrides[variant]), list(losses), mean, improvement, helped))
    combined = [e.variant for e in effects if e.helped]
    merged = {key: value for e in effects if e.helped for key, value in e.overrides.items()}
    if combined:
        why = "combined " + ", ".join(f"{e.variant} ({e.improvement:+.4f} nats, resolved above "
                                      f"{noise.resolution:.4f})" for e in effects if e.helped)
    else:
        why = (f"no modification lowered the loss by more than the resolution {noise.resolution:.4f}, so the "
               "baseline is kept")
    return Combination(experiment, f"{RULE}; {noise.rule}", noise.sigma, noise.resolution, list(baseline), base_mean,
                       effects, combined, merged, why)


def _stable(losses: Sequence[float | None]) -> bool:
    return all(v is not None and math.isfinite(v) for v in losses)


# ---- files -----------------------------------------------------------------------------------------------

def write_combination(path: str | os.PathLike, combination: Combination) -> None:
    atomic_write_text(path, json.dumps({"combination_version": COMBINATION_VERSION,
                                        **dataclasses.asdict(combination)}, indent=2) + "\n")


def read_combination(path: str | os.PathLike) -> Combination:
    """The combination in `path`; CombinationError names the file and what is wrong with it."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        if raw.pop("combination_version") != COMBINATION_VERSION:
            raise KeyError("combination_version")
        raw["effects"] = [Effect(**e) for e in raw["effects"]]
        return Combination(**raw)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CombinationError(f"{os.fspath(path)} is not a version-{COMBINATION_VERSION} combination file ({exc}); "
                               "delete it to rerun its select_combination job") from None
