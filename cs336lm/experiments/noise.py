"""Seed noise, measured once and used by every comparison: the noise floor of an experiment is the pooled sample
standard deviation σ of the final validation loss over runs that differ only in their seed; a difference between
two runs is *resolved* when it exceeds RESOLVE_SIGMAS × √2 × σ, that many standard deviations of the difference of
two independent runs. The workflow's `noise_floor` rule writes it next to the selection files
(`selections/noise/<experiment>.json`); the report reads it back with `read_noise`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cs336lm.atomic import atomic_write_text
from cs336lm.layout import Layout
from cs336lm.training.summary import finished, read_summary

NOISE_VERSION = 1
RESOLVE_SIGMAS = 2.0
RULE = ("the noise floor σ is the pooled sample standard deviation of the final validation loss over runs that "
        f"differ only in their seed; a difference between two runs is resolved when it exceeds {RESOLVE_SIGMAS:g} "
        f"× √2 × σ ({RESOLVE_SIGMAS:g} standard deviations of the difference of two independent runs)")


class NoiseError(ValueError):
    """A noise file is unreadable, or seeds cannot give a noise floor; the message names the file or the runs."""


@dataclass(frozen=True)
class NoiseFloor:
    """`losses`: {variant: final validation loss of each stable seed}; `sigma` is None with fewer than two
    stable seeds of any variant; `resolution` is the smallest difference called resolved."""

    experiment: str
    losses: dict[str, list[float]]
    sigma: float | None
    resolution: float | None
    rule: str

    def resolved(self, difference: float) -> bool | None:
        """Whether |difference| clearly exceeds the noise; None when the noise is not measured."""
        return None if self.resolution is None else abs(difference) > self.resolution

    def judge(self, difference: float, unit: str = "nats", scale: float = 1.0) -> str:
        """`0.012 nats, within the noise (resolved above 0.03): unresolved`. `scale` converts σ into `unit` (e.g.
        nats per token to bits per byte) when `difference` is in another unit than the losses."""
        if self.resolution is None:
            return f"{abs(difference):.3g} {unit}, against noise that is not measured: unresolved"
        bound = self.resolution * scale
        verdict = ("resolved" if abs(difference) > bound else "within the noise: unresolved")
        return f"{abs(difference):.3g} {unit} against a resolution of {bound:.3g} {unit}: {verdict}"


def seed_losses(groups: Mapping[str, Sequence[str]]) -> dict[str, list[float | None]]:
    """{variant: final validation loss of each of its seeds' run directories}, None for a run that did not finish
    stably (cs336lm.training.summary.finished): what the noise floor and the candidates' effects are measured on."""
    summaries = {variant: [read_summary(Layout.summary(d)) for d in dirs] for variant, dirs in groups.items()}
    return {variant: [s.final_val_loss if finished(s) else None for s in runs] for variant, runs in summaries.items()}


def measure_noise(experiment: str, losses: Mapping[str, Sequence[float | None]]) -> NoiseFloor:
    """The noise floor from {variant: final validation loss per seed} (None or non-finite: a run that was not
    stable, left out of the estimate)."""
    finite = {v: [x for x in xs if x is not None and math.isfinite(x)] for v, xs in losses.items()}
    dof = sum(len(xs) - 1 for xs in finite.values() if len(xs) > 1)
    if dof == 0:
        return NoiseFloor(experiment, finite, None, None, RULE)
    squares = sum((x - sum(xs) / len(xs)) ** 2 for xs in finite.values() if len(xs) > 1 for x in xs)
    sigma = math.sqrt(squares / dof)
    return NoiseFloor(experiment, finite, sigma, RESOLVE_SIGMAS * math.sqrt(2) * sigma, RULE)


def pooled(floors: Iterable[NoiseFloor]) -> NoiseFloor | None:
    """One noise floor from several experiments' seeds (their variants pooled), or None without any."""
    floors = list(floors)
    if not floors:
        return None
    losses = {f"{f.experiment}/{v}": xs for f in floors for v, xs in f.losses.items()}
    return measure_noise("+".join(f.experiment for f in floors), losses)


def write_noise(path: str | os.PathLike, noise: NoiseFloor) -> None:
    atomic_write_text(path, json.dumps({"noise_version": NOISE_VERSION, **dataclasses.asdict(noise)}, indent=2)
                      + "\n")


def read_noise(path: str | os.PathLike) -> NoiseFloor:
    """The noise floor in `path`; NoiseError names the file and what is wrong with it."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        if raw.pop("noise_version") != NOISE_VERSION:
            raise KeyError("noise_version")
        return NoiseFloor(**raw)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NoiseError(f"{os.fspath(path)} is not a version-{NOISE_VERSION} noise file ({exc}); delete it to "
                         "rerun its noise_floor job") from None
