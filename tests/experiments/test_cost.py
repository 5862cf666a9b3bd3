"""cs336lm.experiments.cost: the time a run asks the scheduler for (token budget × margin plus start-up, or a
wall-clock budget exactly), throughput tables by batch size and model size, and the per-experiment cost table of the
course config, with dedup and the bounds of adaptive sweeps, as `python -m cs336lm.experiments.cost` prints it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from cs336lm.config import RunConfig
from cs336lm.experiments.combination import choose_combination, write_combination
from cs336lm.experiments.cost import (
    Machine,
    budget_projections,
    estimate,
    experiment_costs,
    format_projections,
    request_minutes,
    slurm_time,
)
from cs336lm.experiments.design import Design
from cs336lm.experiments.noise import measure_noise
from cs336lm.layout import Layout
from cs336lm.lm.accounting import flops_per_token

REPO = Path(__file__).resolve().parents[2]


def machine(entry=1000.0, **runtime) -> Machine:
    return Machine("cpu", {"cpu": {"auto": entry, "reference": 500.0}},
                   **{"margin": 1.5, "startup_minutes": 5.0, "min_minutes": 1, **runtime})


def test_token_budget_run_asks_for_its_estimate_times_margin_plus_startup():
    cfg = RunConfig.from_flat({"train.token_budget": 600_000, "train.eval_every_tokens": 200_000,
                               "train.eval_batches": 2, "train.eval_batch_size": 4})
    run = estimate(cfg, machine(), valid_tokens=24_000)
    # 600 s of training; 3 periodic evaluations of 2 × 4 × 256 tokens and the whole 24,000-token split, at 3×.
    assert run.train_s == pytest.approx(600.0) and run.tokens == 600_000
    assert run.eval_s == pytest.approx((3 * 2048 + 24_000) / 3000)
    seconds = (600 + (3 * 2048 + 24_000) / 3000) * 1.5
    assert request_minutes(cfg, machine(), valid_tokens=24_000) == int(-(-(seconds / 60 + 5) // 1))
    assert request_minutes(cfg, machine(), attempt=2, valid_tokens=24_000) == 2 * request_minutes(
        cfg, machine(), valid_tokens=24_000)


def test_wall_clock_run_asks_for_exactly_its_budget():
    cfg = RunConfig.from_flat({"train.token_budget": 10**12, "train.wall_clock_budget_s": 5400.0,
                               "train.final_eval_tokens": 300_000})
    run = estimate(cfg, machine())
    # The whole job fits in the budget: training gets what 5 min of start-up, the final evaluation (300,000
    # tokens at 3 × 1,000 tokens/s) and the periodic ones (their share of each training second) leave.
    t = cfg.train
    periodic_share = t.eval_batches * t.eval_batch_size * 256 / (t.eval_every_tokens * 3)
    assert run.train_s == pytest.approx((5400 - 300 - 100) / (1 + periodic_share))
    assert run.tokens == int(run.train_s * 1000)
    assert run.train_s + run.eval_s + 300 == pytest.approx(5400, rel=1e-2) and run.train_s + run.eval_s + 300 <= 5400
    # The job ends inside its budget (evaluation and start-up included), so it asks for the handout's limit.
    assert request_minutes(cfg, machine()) == request_minutes(cfg, machine(), attempt=2) == 90
    assert slurm_time(request_minutes(cfg, machine())) == "01:30:00"
    assert request_minutes(RunConfig.from_flat({"train.wall_clock_budget_s": 20.0}), machine()) == 1


def test_course_leaderboard_asks_slurm_for_exactly_the_handouts_limit():
    design, course_machine = course_design()
    run = design.runs["leaderboard", "main"]
    assert run.config.train.wall_clock_budget_s == 5400.0
    assert slurm_time(request_minutes(run.config, course_machine)) == "01:30:00"


def test_leaderboard_tokens_in_its_budget_for_the_combination_chosen_or_its_range(tmp_path):
    design, course_machine = course_design()
    before = budget_projections(design, course_machine, str(tmp_path))
    assert [(p.run, p.configuration.split(" (")[0]) for p in before] == [
        ("leaderboard/main", "baseline"), ("leaderboard/main", "all of tied_head, qk_norm, relu2, z_loss, softcap")]
    for p in before:
        assert p.budget_s == 5400.0 and p.estimate.tokens == int(p.tokens_per_s * p.estimate.train_s)
        job_s = p.estimate.train_s + p.estimate.eval_s + course_machine.startup_minutes * 60
        assert job_s == pytest.approx(5400, rel=1e-3) and job_s <= 5400
    baseline = before[0]
    # The OWT model at the H100 row: the course model's tokens/s scaled by their FLOPs per token.
    owt = design.runs["leaderboard", "main"].config
    course_tps = course_machine.tokens_per_s(RunConfig.from_flat({"train.batch_size": owt.train.batch_size}))
    assert baseline.tokens_per_s == pytest.approx(course_tps * flops_per_token(RunConfig().model)
                                                  / flops_per_token(owt.model))
    # Once the candidates have chosen, the projection is for that combination, the final validation included.
    losses = {"baseline": [4.0, 4.01], "tied_head": [3.0, 3.01]}
    combination = choose_combination(measure_noise("leaderboard_candidates", losses), losses["baseline"],
                                     {"tied_head": losses["tied_head"]}, {"tied_head": {"model.head": "tied"}})
    layout = Layout(str(tmp_path))
    Path(layout.selections()).mkdir()
    write_combination(layout.combination("leaderboard_candidates"), combination)
    Path(layout.tokens("owt", "valid")).parent.mkdir(parents=True)
    np.save(layout.tokens("owt", "valid"), np.zeros(3_000_000 - 64, dtype=np.uint16))  # + the .npy header
    chosen, = budget_projections(design, course_machine, str(tmp_path))
    assert chosen.configuration == "chosen: tied_head"
    tied = RunConfig.from_flat({"model.head": "tied"}, base=owt)
    assert chosen.tokens_per_s == course_machine.tokens_per_s(tied)
    assert chosen.estimate.eval_s > estimate(tied, course_machine).eval_s, "the whole split's validation counts"
    assert "leaderboard/main, chosen: tied_head: " in format_projections([chosen], course_machine)


def test_throughput_by_batch_size_and_model():
    by_batch = machine({1: 100.0, 100: 10_000.0})
    assert by_batch.tokens_per_s(RunConfig.from_flat({"train.batch_size": 10})) == pytest.approx(1000.0)
    assert by_batch.tokens_per_s(RunConfig.from_flat({"train.batch_size": 1000})) == pytest.approx(10_000.0)
    course = machine().tokens_per_s(RunConfig())
    bigger_vocab = machine().tokens_per_s(RunConfig.from_flat({"model.vocab_size": 32_000}))
    assert course == 1000.0 and 0.5 < bigger_vocab / course < 0.7  # the OWT model: more FLOPs per token
    assert machine().tokens_per_s(RunConfig.from_flat({"train.implementation": "reference"})) == 500.0
    with pytest.raises(KeyError, match="machine.throughput.cpu has no entry for train.implementation = 'fast'"):
        machine().tokens_per_s(RunConfig.from_flat({"train.implementation": "fast"}))
    with pytest.raises(KeyError, match="no row for machine.device_class = 'a100'"):
        Machine("a100", {"cpu": {"auto": 1.0}}).tokens_per_s(RunConfig())


def course_design() -> tuple[Design, Machine]:
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config.update(yaml.safe_load((REPO / "profiles/slurm/machine.yaml").read_text()))
    validate(config, str(REPO / "workflow/schemas/config.schema.yaml"))
    return Design(config), Machine.from_config(config["machine"])


def test_course_cost_counts_runs_after_dedup_and_the_bounds_of_adaptive_sweeps():
    costs = {c.name: c for c in experiment_costs(*course_design())}
    course = yaml.safe_load((REPO / "config.yaml").read_text())["experiments"]
    grid = len(course["lr_sweep"]["grid"]["optim.lr_max"])
    assert costs["lr_sweep"].trained == grid + course["lr_sweep"]["find_edge"]["max_runs"]
    repeats = course["ablations"]["seeds"]["baseline"] - 1
    # The baseline is the sweep's winner; its repeats with other seeds are runs of their own.
    assert costs["ablations"].names == 6 + repeats and costs["ablations"].trained == 5 + repeats
    assert costs["ts_main"].trained == 0 and costs["ts_main"].tokens == 0
    # Batch sizes: the named ones and, at the probe's limit, the powers of two up to it; three lrs each.
    batch_sizes = [b for b in course["batch_size"]["grid"]["train.batch_size"] if b != "max"]
    filled = [2**i for i in range(1, 13) if max(batch_sizes) < 2**i <= course["batch_size"]["probe"]["limit"]]
    assert costs["batch_size"].names == len(batch_sizes) + len(filled)
    extend = course["batch_size"]["tune_extend"]["max_runs"]
    assert costs["batch_size"].trained == (3 + extend) * costs["batch_size"].names
    assert costs["lr_sweep"].adaptive and costs["batch_size"].adaptive and not costs["ablations"].adaptive
    for name in ("lr_sweep", "batch_size", "ablations", "owt_main", "leaderboard"):
        assert costs[name].budget is not None and costs[name].gpu_hours > 0
    # Its wall-clock budget holds the whole job: start-up and evaluation, and training in the rest.
    assert costs["leaderboard"].train_hours < 1.5 and costs["leaderboard"].gpu_hours == pytest.approx(1.5, rel=1e-3)
    assert not any(c.over_budget for c in costs.values())


def test_cost_command_prints_every_experiment_with_dedup_and_flags(tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["experiments"]["owt_main"]["budget_gpu_hours"] = 0.01  # planted: surely over budget
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "cs336lm.experiments.cost", "--configfile", str(tmp_path / "config.yaml")]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for name in config["experiments"]:
        assert any(line.startswith(name) for line in lines), done.stdout
    assert [line for line in lines if line.endswith("OVER BUDGET")] == [line for line in lines
                                                                        if line.startswith("owt_main")]
    assert "ablations/baseline = the run lr_sweep selects" in done.stdout
    assert "ts_main/main = the run lr_sweep selects" in done.stdout
    assert "h100-hours" in done.stdout and "≤" in done.stdout
