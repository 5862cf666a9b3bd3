"""Which names of a Design are one training run: a name trains under its own name, is the same run as an earlier
name (cs336lm.training.identity: same dataset, same config but for how it is carried out, each value a sweep
chooses by its reference), or is whichever run a sweep selects. The workflow maps each name to the directory of
the run that trains it; the cost estimate counts each training once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cs336lm.training.identity import run_identity

if TYPE_CHECKING:
    from cs336lm.experiments.design import Design, Run


# Where a run's model, metrics and summary come from: one of these three.
@dataclass(frozen=True)
class Trains:
    """Its own training job, under its own name."""


@dataclass(frozen=True)
class SameAs:
    """The same run as an earlier one of the config (same dataset, same resolved config but for how it is carried
    out: cs336lm.training.identity): trained once, there."""

    experiment: str
    variant: str


@dataclass(frozen=True)
class WinnerOf:
    """Whichever run a sweep selects: a tuned variant, or a run equal to its sweep's runs but for the chosen key."""

    sweep: str


Source = Trains | SameAs | WinnerOf


class TrainedOnce:
    """The source of each run of a design: names asking for the same run train once, under the first name."""

    def __init__(self, design: Design):
        self.design = design
        self._owners: dict[Any, tuple[str, str]] = {}
        for run in design.runs.values():
            if not self._is_tuned_variant(run):
                self._owners.setdefault(self._identity(run), (run.experiment, run.variant))

    def source(self, run: Run) -> Source:
        """Whether the run trains under its own name, is the same run as an earlier name, or is a sweep's winner."""
        if self._is_tuned_variant(run):
            return WinnerOf(run.name)
        winner = self._winner_alias(run)
        if winner is not None:
            return winner
        owner = self._owners.get(self._identity(run))
        if owner is not None and owner != (run.experiment, run.variant):
            return SameAs(*owner)
        return Trains()

    def _is_tuned_variant(self, run: Run) -> bool:
        return self.design.experiments[run.experiment].tuning is not None and "__" not in run.variant

    def _identity(self, run: Run, without: str | None = None) -> tuple:
        """The run it trains (cs336lm.training.identity) on its dataset, each value a sweep chooses by its
        reference, and the candidates experiment whose helpful modifications it takes, if any."""
        return run.dataset, run.combine, run_identity(run.config, run.references, ignore=[without] if without else [])

    def _winner_alias(self, run: Run) -> WinnerOf | None:
        """WinnerOf(sweep) for a run that takes the sweep's key at factor 1 and is otherwise equal to its runs."""
        if len(run.references) != 1:
            return None
        (key, ref), = run.references.items()
        swept = self.design.experiments[ref.best_of]
        if swept.grid_key != key or swept.tuning is not None or swept.dataset != run.dataset:
            return None
        sample = next((r for r in self.design.runs.values() if r.experiment == swept.name), None)
        if sample is None:
            return None
        if ref.times * (run.config.train.batch_size / sample.config.train.batch_size) ** ref.batch_power != 1.0:
            return None
        if self._identity(run, without=key) != self._identity(sample, without=key):
            return None
        return WinnerOf(swept.name)
