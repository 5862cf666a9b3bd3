"""What training costs on a device class, from a throughput table of measured tokens/s: the wall time a
run should ask the scheduler for, and each experiment's training runs, tokens and GPU-hours beside the handout's
budget. `python -m cs336lm.experiments.cost` prints that table for a workflow config before anything is submitted.
"""

from __future__ import annotations

import argparse
import bisect
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cs336lm.config import ModelConfig, RunConfig
from cs336lm.experiments.dedup import Trains, WinnerOf
from cs336lm.experiments.design import Design, Run, fill_batch_sizes
from cs336lm.layout import Layout
from cs336lm.lm.accounting import flops_per_token

# The throughput table's tokens/s are for the course TinyStories model (ModelConfig's defaults); other models scale
# by their training FLOPs per token. Evaluation is a forward pass only: a third of a training step's FLOPs.
EVAL_SPEEDUP = 3.0


@dataclass(frozen=True)
class Machine:
    """Facts about where runs train, from the profile (`machine:` in its config): which row of the throughput
    table applies, and how generously to ask for time."""

    device_class: str
    # device class -> implementation (auto | fast | reference) -> tokens/s, or {batch size: tokens/s} measured at
    # several batch sizes (interpolated log-log, clamped at the ends)
    throughput: Mapping[str, Mapping[str, float | Mapping[int, float]]]
    margin: float = 1.5  # × the estimated training and evaluation time, for a token-budget run
    startup_minutes: float = 5.0  # start-up, compile, checkpoints and the final save
    min_minutes: int = 10

    @classmethod
    def from_config(cls, machine: Mapping[str, Any]) -> Machine:
        runtime = machine.get("runtime", {})
        return cls(machine["device_class"], machine["throughput"], **runtime)

    def tokens_per_s(self, cfg: RunConfig) -> float:
        """The training throughput of `cfg` on this machine: its row's tokens/s for the course model, scaled by
        FLOPs per token to the run's model."""
        row = self.throughput.get(self.device_class)
        if row is None:
            raise KeyError(f"machine.throughput has no row for machine.device_class = {self.device_class!r} "
                           f"(rows: {', '.join(self.throughput)})")
        implementation = cfg.train.implementation
        if implementation not in row:
            raise KeyError(f"machine.throughput.{self.device_class} has no entry for train.implementation = "
                           f"{implementation!r} (entries: {', '.join(row)})")
        entry = row[implementation]
        measured = _interpolate(entry, cfg.train.batch_size) if isinstance(entry, Mapping) else float(entry)
        return measured * flops_per_token(ModelConfig()) / flops_per_token(cfg.model)


@dataclass(frozen=True)
class Estimate:
    """One run's expected seconds of training and of evaluation (periodic and final)."""

    train_s: float
    eval_s: float
    tokens: int


def estimate(cfg: RunConfig, machine: Machine, valid_tokens: int | None = None) -> Estimate:
    """Training and evaluation seconds of one run; `valid_tokens` sizes the final evaluation over the whole split
    (unknown until the split is tokenized: then only periodic evaluations count). Under a wall-clock budget the
    whole job fits inside it, so training gets what start-up and the evaluations leave."""
    t, tps = cfg.train, machine.tokens_per_s(cfg)
    sample = t.eval_batches * t.eval_batch_size * cfg.model.context_length
    final_s = (t.final_eval_tokens or valid_tokens or 0) / (EVAL_SPEEDUP * tps)
    train_s = t.token_budget / tps
    if t.wall_clock_budget_s:
        periodic_share = sample / (t.eval_every_tokens * EVAL_SPEEDUP)  # evaluation seconds per training second
        left = t.wall_clock_budget_s - machine.startup_minutes * 60 - final_s
        train_s = min(train_s, max(left, 0.0) / (1 + periodic_share))
    tokens = int(train_s * tps)
    eval_tokens = (tokens // t.eval_every_tokens) * sample
    return Estimate(train_s, eval_tokens / (EVAL_SPEEDUP * tps) + final_s, tokens)


def request_minutes(cfg: RunConfig, machine: Machine, attempt: int = 1, valid_tokens: int | None = None) -> int:
    """Minutes to ask the scheduler for. A wall-clock budget run asks for its budget exactly (rounded up to the
    minute: 5,400 s is the handout's `--time=01:30:00`), every attempt: the job itself ends inside it, start-up,
    evaluation and outputs included (cs336lm.training.schedule.JobBudget). A token-budget run asks for its
    estimate × margin, then start-up, × the attempt number."""
    if cfg.train.wall_clock_budget_s:
        return math.ceil(cfg.train.wall_clock_budget_s / 60)
    run = estimate(cfg, machine, valid_tokens)
    minutes = math.ceil((run.train_s + run.eval_s) * machine.margin / 60 + machine.startup_minutes)
    return max(machine.min_minutes, minutes) * attempt


def slurm_time(minutes: int) -> str:
    """`--time` as Slurm writes it: 90 -> 01:30:00."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"


def _interpolate(points: Mapping[int, float], batch_size: int) -> float:
    sizes = sorted(int(b) for b in points)
    values = {int(b): float(v) for b, v in points.items()}
    if batch_size <= sizes[0] or batch_size >= sizes[-1]:
        return values[sizes[0] if batch_size <= sizes[0] else sizes[-1]]
    i = bisect.bisect_right(sizes, batch_size)
    lo, hi = sizes[i - 1], sizes[i]
    w = math.log(batch_size / lo) / math.log(hi / lo)
    return math.exp((1 - w) * math.log(values[lo]) + w * math.log(values[hi]))


# ---- the experiment table ----------------------------------------------------------------------------------

@dataclass
class ExperimentCost:
    name: str
    names: int = 0  # run names the report shows
    trained: int = 0  # training jobs after dedup (bound, for sweeps that add runs)
    tokens: int = 0
    train_hours: float = 0.0  # training alone: what the handout's budgets count
    gpu_hours: float = 0.0  # with evaluation and each run's start-up
    budget: float | None = None
    shared: list[str] = field(default_factory=list)  # names another run trains
    adaptive: bool = False

    @property
    def over_budget(self) -> bool:
        return self.budget is not None and self.train_hours > self.budget


def experiment_costs(design: Design, machine: Machine) -> list[ExperimentCost]:
    """Per experiment: names, training runs after dedup (a search for the optimum and the edge at its bound of
    extra runs, `max` at the probe's limit, every seed), their tokens, and hours on `machine` (no margin): training,
    and with evaluation and start-up."""
    costs = []
    for name, spec in design.experiments.items():
        cost = ExperimentCost(name, budget=spec.budget_gpu_hours,
                              adaptive=bool(spec.edge or spec.probe or (spec.tuning and spec.tuning.max_runs)))
        variants = list(spec.variants)
        if spec.edge:
            top = max(design.runs[name, v].config.to_flat()[spec.grid_key] for v in variants)
            variants += [design.variant_name(name, top * spec.edge.step ** (i + 1)) for i in range(spec.edge.max_runs)]
        if spec.probe:
            named = [design.runs[name, v].config.train.batch_size for v in variants]
            variants += [design.variant_name(name, b) for b in fill_batch_sizes(named, spec.probe.limit)]
        variants += [repeat for group in design.seed_groups(name).values() for repeat in group[1:]]
        runs = [design.run(name, v) for v in variants]
        cost.names = len(runs)
        if spec.tuning:
            # Each variant's candidates, and the most its range extension may add (the factor does not change
            # what a run costs).
            top = max(spec.tuning.factors)
            extended = [design.candidate_name(name, v, top * 2.0 ** (i + 1)) for v in variants
                        for i in range(spec.tuning.max_runs)]
            runs = [design.run(name, c) for v in variants for c in design.candidates(name, v)]
            runs += [design.run(name, c) for c in extended]
        for run in runs:
            source = design.source(run)
            if isinstance(source, Trains):
                _add(cost, run, machine)
            else:
                cost.shared.append(_describe(run, source))
        costs.append(cost)
    return costs


def _add(cost: ExperimentCost, run: Run, machine: Machine) -> None:
    est = estimate(run.config, machine)
    cost.trained += 1
    cost.tokens += est.tokens
    cost.train_hours += est.train_s / 3600
    cost.gpu_hours += (est.train_s + est.eval_s) / 3600 + machine.startup_minutes / 60


def _describe(run: Run, source: Any) -> str:
    if isinstance(source, WinnerOf):
        return f"{run.name} = the run {source.sweep} selects"
    return f"{run.name} = {source.experiment}/{source.variant}"


def format_costs(costs: list[ExperimentCost], machine: Machine) -> str:
    lines = [f"{machine.device_class}-hours estimated from machine.throughput.{machine.device_class} (no margin): "
             "training, and with evaluation and start-up", "",
             f"{'experiment':<22} {'names':>5} {'trained':>8} {'tokens':>10} {'training':>9} {'all':>7} "
             f"{'budget':>7}  note", "-" * 88]
    for c in costs:
        bound = "≤" if c.adaptive else ""
        budget = f"{c.budget:g}" if c.budget is not None else "-"
        note = "OVER BUDGET" if c.over_budget else ""
        lines.append(f"{c.name:<22} {bound + str(c.names):>5} {bound + str(c.trained):>8} "
                     f"{_tokens(c.tokens):>10} {c.train_hours:>9.2f} {c.gpu_hours:>7.2f} {budget:>7}  {note}".rstrip())
    lines += ["-" * 88, f"{'total':<22} {sum(c.names for c in costs):>5} {sum(c.trained for c in costs):>8} "
              f"{_tokens(sum(c.tokens for c in costs)):>10} {sum(c.train_hours for c in costs):>9.2f} "
              f"{sum(c.gpu_hours for c in costs):>7.2f}"]
    shared = [s for c in costs for s in c.shared]
    if shared:
        lines += ["", "trained once, shown under both names:"] + [f"  {s}" for s in shared]
    lines += ["", "≤: a bound (a search for the optimum and the edge at its most extra runs, `max` at the probe's "
              "limit).",
              "OVER BUDGET: training hours above the handout's budget (budget_gpu_hours)."]
    return "\n".join(lines)


# ---- what a wall-clock budget buys ------------------------------------------------------------------------

@dataclass(frozen=True)
class Projection:
    """The tokens one configuration of a wall-clock budget run trains on within its budget on `machine`."""

    run: str
    configuration: str  # which modifications, in words
    config: RunConfig  # with them (sweep-chosen values at their defaults: they do not change the speed)
    budget_s: float
    tokens_per_s: float
    estimate: Estimate


def budget_projections(design: Design, machine: Machine, results_root: str = "results") -> list[Projection]:
    """For each wall-clock budget run (seeded candidates and sweeps aside): its tokens within the budget, for the
    combination its candidates chose where `results_root` holds that choice already, otherwise for the baseline and
    for every candidate combined (the range the choice falls in)."""
    from cs336lm.experiments.combination import read_combination

    layout = Layout(results_root)
    projections = []
    for run in design.runs.values():
        budget = run.config.train.wall_clock_budget_s
        spec = design.experiments[run.experiment]
        if not budget or spec.seeds or spec.grid_key or not isinstance(design.source(run), Trains):
            continue
        configurations: dict[str, dict[str, Any]] = {"as written": {}}
        if run.combine:
            chosen = Path(layout.combination(run.combine))
            if chosen.exists():
                combination = read_combination(chosen)
                configurations = {"chosen: " + (", ".join(combination.combined) or "baseline (nothing helped)"):
                                  combination.overrides}
            else:
                every = design.modifications(run.combine)
                configurations = {"baseline (not chosen yet)": {},
                                  f"all of {', '.join(every)} (not chosen yet)":
                                  {k: v for overrides in every.values() for k, v in overrides.items()}}
        valid = Path(layout.tokens(run.dataset, "valid"))  # the final validation, once tokenized
        valid_tokens = valid.stat().st_size // 2 if valid.exists() else None
        for words, overrides in configurations.items():
            cfg = RunConfig.from_flat(dict(overrides), base=run.config)
            projections.append(Projection(run.name, words, cfg, budget, machine.tokens_per_s(cfg),
                                          estimate(cfg, machine, valid_tokens)))
    return projections


def format_projections(projections: list[Projection], machine: Machine) -> str:
    lines = [f"Tokens within each wall-clock budget at machine.throughput.{machine.device_class} (the whole job: "
             f"{machine.startup_minutes:g} min start-up and the evaluations come out of the budget):"]
    for p in projections:
        lines.append(f"  {p.run}, {p.configuration}: {_tokens(p.estimate.tokens)} tokens in "
                     f"{slurm_time(math.ceil(p.budget_s / 60))} ({p.estimate.train_s / 60:.1f} min of training at "
                     f"{p.tokens_per_s:,.0f} tokens/s)")
    return "\n".join(lines)


def _tokens(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cs336lm.experiments.cost", description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", type=Path, default=Path("config.yaml"), help="the experiment design")
    parser.add_argument("--machine", type=Path, default=Path("profiles/slurm/machine.yaml"),
                        help="a profile's machine facts (device class, throughput table)")
    parser.add_argument("--schema", type=Path, default=Path("workflow/schemas/config.schema.yaml"))
    args = parser.parse_args(argv)
    import yaml
    from snakemake.utils import validate

    config = yaml.safe_load(args.configfile.read_text())
    if "machine" not in config:
        config["machine"] = yaml.safe_load(args.machine.read_text())["machine"]
    validate(config, str(args.schema))
    machine = Machine.from_config(config["machine"])
    design = Design(config)
    print(format_costs(experiment_costs(design, machine), machine))
    projections = budget_projections(design, machine, config.get("results_root", "results"))
    if projections:
        print()
        print(format_projections(projections, machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
