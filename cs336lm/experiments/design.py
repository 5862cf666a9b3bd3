"""The experiment design as training runs (handout §7): every (experiment, variant) of a workflow config, values that
another experiment's sweep chooses (`optim.lr_max: {best_of: lr_sweep}`), per-variant tuning, the edge search and the
`max` batch size, read from the config with errors that name the key to fix. Which names are one training run is
cs336lm.experiments.dedup's. Torch- and Snakemake-free: the workflow and the cost command build the same `Design`
from the same config.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cs336lm.config import ConfigError, RunConfig
from cs336lm.experiments.dedup import Source, TrainedOnce
from cs336lm.experiments.selection import EdgeSearch

MAX = "max"  # the top of a batch-size grid: the largest batch that fits, found by probing the device
BASELINE = "baseline"  # the variant of a candidates experiment that each modification is measured against


@dataclass(frozen=True)
class Reference:
    """A value another experiment's sweep chooses: its winner's value × `times` × (this run's batch size / the
    sweep's) ** `batch_power` (0.5: the square-root scaling of the learning rate with the batch size)."""

    best_of: str
    times: float = 1.0
    batch_power: float = 0.0

    def __str__(self) -> str:
        extra = "".join(f", {k}: {v:g}" for k, v in (("times", self.times), ("batch_power", self.batch_power))
                        if v != (1.0 if k == "times" else 0.0))
        return f"{{best_of: {self.best_of}{extra}}}"


@dataclass(frozen=True)
class Probe:
    """Where the `max` batch size comes from: the largest batch (≤ limit) whose training steps fit in the device's
    memory, or under memory_cap_mb where given (required on CPU)."""

    memory_cap_mb: int | None = None
    limit: int = 4096


@dataclass(frozen=True)
class Tuning:
    """Each variant gets its own `key`: a small sweep over its value × each factor; the best one is the variant.
    While the best is the smallest or largest factor tried, the range extends past that end by the spacing of
    the factors there, at most `max_runs` more runs per variant (cs336lm.experiments.selection.plan_tuning)."""

    key: str
    factors: tuple[float, ...]
    max_runs: int = 0


@dataclass(frozen=True)
class Experiment:
    name: str
    dataset: str
    written: str  # grid | variants
    grid_key: str | None  # the one key of a one-key grid: what `best_of` this experiment selects
    edge: EdgeSearch | None
    probe: Probe | None
    tuning: Tuning | None
    budget_gpu_hours: float | None
    base: Mapping[str, Any] = field(repr=False)
    variants: Mapping[str, Mapping[str, Any]] = field(repr=False)  # the ones the config names (not `max`'s)
    seeds: Mapping[str, int] = field(default_factory=dict)  # variant -> how many seeds it trains, itself included
    combine: str | None = None  # the candidates experiment whose modifications that helped these runs take


@dataclass(frozen=True)
class Run:
    """One named run. `config` has every reference at its default value: right for everything but those keys."""

    experiment: str
    variant: str
    dataset: str
    overrides: Mapping[str, Any]  # dotted keys -> literal values or References
    config: RunConfig
    combine: str | None = None  # also takes the modifications this candidates experiment found helpful

    @property
    def references(self) -> dict[str, Reference]:
        return {k: v for k, v in self.overrides.items() if isinstance(v, Reference)}

    @property
    def name(self) -> str:
        return f"{self.experiment}/{self.variant}"


def variant_slug(overrides: Mapping[str, Any]) -> str:
    """`{"optim.lr_max": 0.001}` -> `lr_max~0.001`: names a grid point by its last key parts and values."""
    return "__".join(f"{short_key(key)}~{value:g}" if isinstance(value, float) else f"{short_key(key)}~{value}"
                     for key, value in overrides.items())


def short_key(key: str) -> str:
    return key.rpartition(".")[2]


def fill_batch_sizes(named: list[int], largest: int) -> list[int]:
    """The batch sizes `max` adds above the named ones: each power of two below the largest that fits, and it."""
    top = max(named, default=0)
    powers = [2**i for i in range(1, largest.bit_length()) if top < 2**i < largest]
    return powers + ([largest] if largest not in named else [])


class Design:
    """Every run of a validated workflow config, by (experiment, variant); errors name the config key."""

    def __init__(self, config: Mapping[str, Any]):
        self.data = config["data"]
        defaults = dict(config["defaults"])
        self.default_dataset = defaults.pop("dataset", "tinystories")
        defaults.pop("code_version", None)
        self._written_vocab_size = (defaults.get("model") or {}).get("vocab_size")
        if self.default_dataset not in self.data:
            raise ConfigError(f"defaults.dataset = {self.default_dataset!r} is not defined under data")
        try:
            self.base_config = RunConfig.from_dict(defaults)
        except ConfigError as error:
            raise error.located(lambda key: f"defaults.{key}") from None
        specs = config["experiments"]
        self.experiments = {name: self._experiment(name, spec) for name, spec in specs.items()}
        self.runs: dict[tuple[str, str], Run] = {}
        for experiment in self.experiments.values():
            for variant, overrides in experiment.variants.items():
                self._add(self._build(experiment, variant, overrides))
                for candidate, candidate_overrides in self._candidates(experiment, variant, overrides).items():
                    self._add(self._build(experiment, candidate, candidate_overrides))
                for repeat, repeat_overrides in self._repeats(experiment, variant, overrides).items():
                    self._add(self._build(experiment, repeat, repeat_overrides))
        for experiment in self.experiments.values():
            self._check_references(experiment, specs[experiment.name])
            self._check_combination(experiment)
        self._names = TrainedOnce(self)

    # ---- reading the config -------------------------------------------------------------------------------

    def _experiment(self, name: str, spec: Mapping[str, Any]) -> Experiment:
        where = f"experiments.{name}"
        dataset = spec.get("dataset", self.default_dataset)
        if dataset not in self.data:
            raise ConfigError(f"{where}.dataset = {dataset!r} is not defined under data "
                              f"(defined: {', '.join(self.data)})")
        base = {key: _reference(f"{where}.base.{key}", value) for key, value in (spec.get("base") or {}).items()}
        grid_key, probe = None, None
        if "grid" in spec:
            grid = dict(spec["grid"])
            if any(MAX in values for values in grid.values()):
                if list(grid) != ["train.batch_size"]:
                    raise ConfigError(f"{where}.grid: `max` is only for a grid over train.batch_size alone")
                grid["train.batch_size"] = [v for v in grid["train.batch_size"] if v != MAX]
                probe = Probe(**(spec.get("probe") or {}))
            elif "probe" in spec:
                raise ConfigError(f"{where}.probe is only for a batch-size grid that ends in `max`")
            points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
            variants = {variant_slug(point): point for point in points}
            grid_key = next(iter(grid)) if len(grid) == 1 else None
            if not variants and probe is None:
                raise ConfigError(f"{where} has no variants: give its grid values or at least one variant")
        else:
            variants = {variant: {k: _reference(f"{where}.variants.{variant}.{k}", v) for k, v in (o or {}).items()}
                        for variant, o in spec["variants"].items()}
            if not variants:
                raise ConfigError(f"{where} has no variants: give its grid values or at least one variant")
        edge = None
        if "find_edge" in spec:
            if grid_key is None or probe is not None:
                raise ConfigError(f"{where}.find_edge needs a grid over one numeric key (e.g. optim.lr_max)")
            if not isinstance(self.base_config.to_flat()[grid_key], float):
                raise ConfigError(f"{where}.find_edge needs a grid over a real-valued key, not {grid_key}")
            edge = EdgeSearch(**spec["find_edge"])
        tuning = None
        if "tune" in spec:
            (key, factors), = spec["tune"].items()
            tuning = Tuning(key, tuple(float(f) for f in factors), (spec.get("tune_extend") or {}).get("max_runs", 0))
            if tuning.max_runs and len(set(tuning.factors)) < 2:
                raise ConfigError(f"{where}.tune_extend needs at least two factors in tune to extend by their spacing")
        elif "tune_extend" in spec:
            raise ConfigError(f"{where}.tune_extend is only for an experiment with `tune`")
            if edge is not None:
                raise ConfigError(f"{where}: tune and find_edge do not combine; tune the variants of another sweep")
        seeds = spec.get("seeds") or {}
        if isinstance(seeds, int) and not isinstance(seeds, bool):  # `seeds: n`: every variant with n seeds
            seeds = dict.fromkeys(variants, seeds)
        seeds = dict(seeds)
        for variant, count in seeds.items():
            if variant not in variants:
                raise ConfigError(f"{where}.seeds.{variant}: no such variant (variants: {', '.join(variants)})")
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise ConfigError(f"{where}.seeds.{variant} = {count!r} must be a whole number of seeds >= 1")
        if seeds and tuning is not None:
            raise ConfigError(f"{where}.seeds: each variant of a tuned experiment is its own sweep's winner; repeat "
                              "a run of an experiment without `tune`")
        return Experiment(name, dataset, "grid" if "grid" in spec else "variants", grid_key, edge, probe, tuning,
                          spec.get("budget_gpu_hours"), base, variants, seeds, spec.get("combine"))

    def _repeats(self, experiment: Experiment, variant: str, overrides: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """{repeat variant: overrides}: the variant again with each further seed (`baseline__seed~1`, ...), its
        train.seed counted up from its own."""
        seed = {**experiment.base, **overrides}.get("train.seed", self.base_config.train.seed)
        return {f"{variant}__seed~{seed + k}": {**overrides, "train.seed": seed + k}
                for k in range(1, experiment.seeds.get(variant, 1))}

    def seed_groups(self, experiment: str) -> dict[str, list[str]]:
        """{variant: [the variant, its repeats with other seeds]} of the variants an experiment repeats."""
        spec = self.experiments[experiment]
        return {variant: [variant, *self._repeats(spec, variant, spec.variants[variant])] for variant in spec.seeds}

    def arms(self, experiment: str) -> dict[str, list[str]]:
        """{variant: [the variant, its repeats with other seeds]} of every variant an experiment names: each
        variant's runs, one per seed (one run for a variant without seeds)."""
        groups = self.seed_groups(experiment)
        return {variant: groups.get(variant, [variant]) for variant in self.experiments[experiment].variants}

    def modifications(self, experiment: str) -> dict[str, dict[str, Any]]:
        """{variant: its overrides} of a candidates experiment's variants other than the baseline."""
        return {variant: dict(o) for variant, o in self.experiments[experiment].variants.items() if variant != BASELINE}

    def _candidates(self, experiment: Experiment, variant: str, overrides: Mapping[str, Any]
                    ) -> dict[str, dict[str, Any]]:
        """{candidate variant: overrides} of a tuned variant; none for an experiment without `tune`."""
        if experiment.tuning is None:
            return {}
        return dict(self._candidate(experiment, variant, overrides, f) for f in experiment.tuning.factors)

    def _candidate(self, experiment: Experiment, variant: str, overrides: Mapping[str, Any], factor: float
                   ) -> tuple[str, dict[str, Any]]:
        """(name, overrides) of the variant's candidate at `factor` × its value of the tuned key."""
        key = experiment.tuning.key
        value = {**experiment.base, **overrides}.get(key, self.base_config.to_flat().get(key))
        if isinstance(value, Reference):
            tuned = Reference(value.best_of, value.times * factor, value.batch_power)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            tuned = float(value) * factor
        else:
            raise ConfigError(f"experiments.{experiment.name}.tune: {key} = {value!r} is not a number to scale")
        return self.candidate_name(experiment.name, variant, factor), {**overrides, key: tuned}

    def candidate_name(self, experiment: str, variant: str, factor: float) -> str:
        """`batch_size~64__lr_max~x0.5`: the variant's tuning candidate at `factor`."""
        return f"{variant}__{short_key(self.experiments[experiment].tuning.key)}~x{factor:g}"

    def _build(self, experiment: Experiment, variant: str, overrides: Mapping[str, Any]) -> Run:
        merged = {**experiment.base, **overrides}
        vocab_size = self.data[experiment.dataset]["tokenizer"]["vocab_size"]
        written = merged.get("model.vocab_size", self._written_vocab_size or vocab_size)
        if written != vocab_size:
            raise ConfigError(f"experiments.{experiment.name}: model.vocab_size = {written!r} differs from "
                              f"data.{experiment.dataset}.tokenizer.vocab_size = {vocab_size}; leave "
                              "model.vocab_size out")
        literal = {k: v for k, v in merged.items() if not isinstance(v, Reference)}
        try:
            run_config = RunConfig.from_flat({**literal, "model.vocab_size": vocab_size}, base=self.base_config)
        except ConfigError as error:
            raise ConfigError(f"{error.located(self._written_at(experiment, variant))} "
                              f"(run {experiment.name}/{variant})") from None
        return Run(experiment.name, variant, experiment.dataset, merged, run_config, experiment.combine)

    def _written_at(self, experiment: Experiment, variant: str, resolved: bool = False) -> Callable[[str], str]:
        """key -> where the config sets it for this run, so an error names the line to fix. Before the sweeps
        resolve, a key that takes a sweep's value is checked at its default, so the default is named."""
        point, _, candidate = variant.partition("__")
        own = experiment.variants.get(point, {})

        def written(key: str, overrides: Mapping[str, Any]) -> bool:
            return key in overrides and (resolved or not isinstance(overrides[key], Reference))

        def where(key: str) -> str:
            if key == "model.vocab_size":
                return f"data.{experiment.dataset}.tokenizer.vocab_size"
            if candidate and experiment.tuning and key == experiment.tuning.key and resolved:
                return f"experiments.{experiment.name}.tune.{key}"
            if key == experiment.grid_key or (experiment.written == "grid" and written(key, own)):
                return f"experiments.{experiment.name}.grid.{key}"
            if written(key, own):
                return f"experiments.{experiment.name}.variants.{point}.{key}"
            if written(key, experiment.base):
                return f"experiments.{experiment.name}.base.{key}"
            return f"defaults.{key}"
        return where

    def _add(self, run: Run) -> None:
        self.runs[run.experiment, run.variant] = run

    def _check_references(self, experiment: Experiment, spec: Mapping[str, Any]) -> None:
        flat_defaults = self.base_config.to_flat()
        for run in (r for r in self.runs.values() if r.experiment == experiment.name):
            for key, ref in run.references.items():
                where = f"experiments.{experiment.name}: {key} = {ref}"
                swept = self.experiments.get(ref.best_of)
                if swept is None:
                    raise ConfigError(f"{where}: best_of {ref.best_of!r} is not an experiment "
                                      f"(experiments: {', '.join(self.experiments)})")
                if swept.name == experiment.name:
                    raise ConfigError(f"{where}: an experiment cannot take a value from its own sweep")
                if swept.grid_key is None:
                    raise ConfigError(f"{where}: best_of {ref.best_of!r} has no grid over one key, so it has no "
                                      "single best value to take")
                if any(r.references for r in self.runs.values() if r.experiment == swept.name):
                    raise ConfigError(f"{where}: experiments.{swept.name} takes values from another sweep itself; "
                                      "only a sweep of fixed values can be referenced")
                kind = type(flat_defaults[key])
                if kind not in (int, float):
                    raise ConfigError(f"{where}: {key} is not a number, so it cannot come from a sweep")
                if kind is int and (ref.times != 1 or ref.batch_power != 0):
                    raise ConfigError(f"{where}: {key} is an integer: take it as chosen (no times, batch_power)")
                if ref.batch_power and swept.grid_key == "train.batch_size":
                    raise ConfigError(f"{where}: batch_power needs a sweep at one batch size, but "
                                      f"experiments.{swept.name} sweeps train.batch_size")

    def _check_combination(self, experiment: Experiment) -> None:
        """A `combine` names a candidates experiment: seeds for its noise floor, an empty `baseline` variant, and
        modifications of fixed values that can all be applied together to every run of this experiment (so any
        subset of them can be too)."""
        if experiment.combine is None:
            return
        where = f"experiments.{experiment.name}.combine = {experiment.combine!r}"
        source = self.experiments.get(experiment.combine)
        if source is None:
            raise ConfigError(f"{where} is not an experiment (experiments: {', '.join(self.experiments)})")
        if source.name == experiment.name or source.combine is not None:
            raise ConfigError(f"{where}: the candidates must be compared on their own, without combining others")
        if not any(count > 1 for count in source.seeds.values()) or BASELINE not in source.variants:
            raise ConfigError(f"{where}: experiments.{source.name} needs a `{BASELINE}` variant and `seeds` (e.g. "
                              "`seeds: 2`) to tell a modification's effect from the seed noise")
        if source.variants[BASELINE]:
            raise ConfigError(f"{where}: experiments.{source.name}.variants.{BASELINE} must be empty (`{{}}`): it is "
                              "what each modification is measured against; shared settings belong in its base")
        union: dict[str, tuple[str, Any]] = {}
        for variant, overrides in self.modifications(source.name).items():
            for key, value in overrides.items():
                at = f"experiments.{source.name}.variants.{variant}.{key}"
                if isinstance(value, Reference) or key == "train.seed":
                    raise ConfigError(f"{at} = {value}: a modification to combine must be a fixed value, not the "
                                      f"seed ({where})")
                if key in union and union[key][1] != value:
                    raise ConfigError(f"{at} = {value!r} conflicts with variants.{union[key][0]}.{key} = "
                                      f"{union[key][1]!r}: the two modifications cannot be combined ({where})")
                union[key] = (variant, value)
        together = {key: value for key, (_, value) in union.items()}
        for run in (r for r in self.runs.values() if r.experiment == experiment.name):
            try:
                RunConfig.from_flat(together, base=run.config)
            except ConfigError as error:
                raise ConfigError(f"{where}: the modifications of {', '.join(self.modifications(source.name))} "
                                  f"together do not make a valid run {run.name}: {error}") from None

    def check_same_training(self, experiments: list[str], why: str) -> None:
        """Every run of `experiments` trains the same model (its vocabulary, which follows each dataset's tokenizer,
        aside) for the same number of iterations; a ConfigError names the first run and key that differ. `why`
        says what asks for it (the main runs: handout §7.4)."""
        runs = [r for name in experiments for r in self.runs.values() if r.experiment == name]
        if len(runs) < 2:
            return
        first = runs[0]

        def shape(run: Run) -> dict[str, Any]:
            model = {f"model.{k}": v for k, v in run.config.to_dict()["model"].items() if k != "vocab_size"}
            return {**model, "num_iterations": run.config.num_iterations}

        for run in runs[1:]:
            differ = [k for k, v in shape(run).items() if shape(first)[k] != v]
            if differ:
                k = differ[0]
                raise ConfigError(f"{run.name} has {k} = {shape(run)[k]!r} but {first.name} has "
                                  f"{shape(first)[k]!r}: {why}; give both the same model, batch size and token "
                                  "budget (leave them to the defaults)")

    # ---- runs by name, and where each one trains -----------------------------------------------------------

    def run(self, experiment: str, variant: str) -> Run:
        """A named run: one the config lists, a value an edge search added (`lr_max~0.0173`), a batch size `max`
        added (`batch_size~512`), or a tuning candidate of one of those."""
        if (experiment, variant) in self.runs:
            return self.runs[experiment, variant]
        spec = self.experiments.get(experiment)
        if spec is None:
            raise ConfigError(f"no experiment {experiment!r} in this config (experiments: "
                              f"{', '.join(self.experiments)})")
        point, _, tuned = variant.partition("__")
        overrides = spec.variants.get(point) if tuned else None
        overrides = self._dynamic_point(spec, point) if overrides is None else overrides
        if overrides is None:
            raise ConfigError(f"experiments.{experiment} has no variant {variant!r}")
        if not tuned:
            return self._build(spec, point, overrides)
        factor = self._extension_factor(spec, tuned)
        candidates = self._candidates(spec, point, overrides)
        if variant not in candidates and factor is not None:  # a factor a tuning extension added
            candidates = dict([self._candidate(spec, point, overrides, factor)])
        if variant not in candidates:
            raise ConfigError(f"experiments.{experiment} has no tuning candidate {variant!r}")
        return self._build(spec, variant, candidates[variant])

    @staticmethod
    def _extension_factor(spec: Experiment, suffix: str) -> float | None:
        """The factor of a candidate suffix `lr_max~x4` of an experiment whose tuning extends, else None."""
        if spec.tuning is None or not spec.tuning.max_runs:
            return None
        name, _, text = suffix.partition("~x")
        try:
            factor = float(text)
        except ValueError:
            return None
        ok = name == short_key(spec.tuning.key) and factor > 0 and math.isfinite(factor) and f"{factor:g}" == text
        return factor if ok else None

    def _dynamic_point(self, spec: Experiment, point: str) -> dict[str, Any] | None:
        if spec.grid_key is None or (spec.edge is None and spec.probe is None):
            return None
        name, _, text = point.partition("~")
        if name != short_key(spec.grid_key):
            return None
        try:
            value = int(text) if spec.probe is not None else float(text)
        except ValueError:
            return None
        if value <= 0 or variant_slug({spec.grid_key: value}) != point:
            return None
        return {spec.grid_key: value}

    def variant_name(self, experiment: str, value: float | int) -> str:
        """The variant that trains `value` of the experiment's grid key (an edge search or `max` adds these)."""
        return variant_slug({self.experiments[experiment].grid_key: value})

    def candidates(self, experiment: str, variant: str) -> list[str]:
        """The tuning candidates of a variant of a tuned experiment, in the order of the factors."""
        return list(self._candidates(self.experiments[experiment], variant, self.run(experiment, variant).overrides))

    def source(self, run: Run) -> Source:
        """Whether the run trains under its own name, is the same run as an earlier one, or is a sweep's winner
        (cs336lm.experiments.dedup)."""
        return self._names.source(run)

    # ---- values chosen by sweeps ---------------------------------------------------------------------------

    def sweep_batch_size(self, experiment: str) -> int:
        return next(r for r in self.runs.values() if r.experiment == experiment).config.train.batch_size

    def chosen_values(self, run: Run, chosen: Mapping[str, float]) -> dict[str, float]:
        """{key: value} of the run's references, given {sweep: the value it chose}."""
        values = {}
        for key, ref in run.references.items():
            scale = (run.config.train.batch_size / self.sweep_batch_size(ref.best_of)) ** ref.batch_power
            values[key] = chosen[ref.best_of] * ref.times * scale
        return values

    def resolve(self, run: Run, chosen: Mapping[str, float], combined: Mapping[str, Any] | None = None
                ) -> RunConfig:
        """The run's config with each reference at its value, given {sweep: the value it chose}, and, for a run
        that combines modifications, the overrides of those its candidates experiment kept (`combined`)."""
        values = {**self.chosen_values(run, chosen), **(combined or {})}
        try:
            return RunConfig.from_flat(values, base=run.config)
        except ConfigError as error:
            chose = ", ".join([f"{key} = {ref} -> {values[key]:g}" for key, ref in run.references.items()]
                              + [f"{key} = {value!r}" for key, value in (combined or {}).items()])
            where = self._written_at(self.experiments[run.experiment], run.variant, resolved=True)
            raise ConfigError(f"{error.located(where)} (run {run.name}, after the sweeps chose: {chose})") from None


def _reference(where: str, value: Any) -> Any:
    """A `{best_of: ...}` mapping as a Reference; anything else as given."""
    if not isinstance(value, Mapping):
        return value
    unknown = set(value) - {"best_of", "times", "batch_power"}
    if "best_of" not in value or unknown:
        raise ConfigError(f"{where} = {dict(value)!r}: a value from a sweep is written "
                          "{best_of: <experiment>, times: <number>, batch_power: <number>}")
    times, power = value.get("times", 1.0), value.get("batch_power", 0.0)
    if not (isinstance(times, (int, float)) and times > 0 and math.isfinite(times)):
        raise ConfigError(f"{where}.times = {times!r} must be a number > 0")
    return Reference(value["best_of"], float(times), float(power))
