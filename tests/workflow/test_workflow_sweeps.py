"""Experiments that decide, through real `snakemake` subprocesses on tiny configs: a run takes its sweep's best
value and reruns when the sweep's result changes, the search brackets the optimum and the edge round by round,
seeds repeat a run and give the noise floor, the modifications that helped beyond it are combined, the batch-size
probe finds a planted memory cap and `max` fills the grid up to it, and dry runs of the course config and the demo
show every run, with the names trained once left out of the training jobs."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from cs336lm.experiments.noise import read_noise
from cs336lm.experiments.selection import read_plan, read_selection
from cs336lm.training.summary import read_summary
from tests.helpers import COURSE_CONFIG, REPO, SNAKEFILE, TINY_CONFIG, output, planned_jobs, snakemake

ROOT = "results-tiny"


def sweep_config(path: Path, experiments: dict, **train) -> Path:
    """tests/data/tiny_config.yaml cut to one small dataset, `experiments` and no report."""
    config = yaml.safe_load(TINY_CONFIG.read_text())
    data = config["data"]["tinystories"]
    data["train"]["synthetic"]["bytes"], data["valid"]["synthetic"]["bytes"] = 150_000, 20_000
    data["tokenizer"]["vocab_size"] = 300
    config["data"] = {"tinystories": data}
    config["defaults"]["train"].update(train)
    config["experiments"] = experiments
    config["report"] = {}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def tokenized(tmp_path_factory) -> Path:
    """A work directory with the sweep configs' corpus synthesized, its tokenizer trained and both splits
    tokenized, for each test to copy instead of making them again."""
    work = tmp_path_factory.mktemp("tokenized")
    config = sweep_config(work / "data.yaml", {"lr_sweep": {"grid": {"optim.lr_max": [1.0e-2]}}})
    run_or_fail(work, *(f"{ROOT}/tokens/tinystories/{split}.npy" for split in ("train", "valid")), configfile=config)
    return work


def workdir_with_data(tmp_path: Path, tokenized: Path) -> Path:
    work = tmp_path / "work"
    shutil.copytree(tokenized / ROOT, work / ROOT)  # keeps modification times: nothing upstream reruns
    return work


def train_jobs(result) -> Counter:
    return Counter(w["experiment"] for rule, w in planned_jobs(result) if rule == "train_lm")


def run_or_fail(workdir: Path, *args: str, configfile: Path):
    result = snakemake(workdir, *args, configfile=configfile, timeout=900)
    assert result.returncode == 0, output(result)[-6000:]
    return result


# ---- values from a sweep ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_downstream_run_takes_the_best_value_and_reruns_when_the_sweep_changes(tmp_path, tokenized):
    def experiments(grid):
        return {"lr_sweep": {"grid": {"optim.lr_max": grid}},
                "tuned": {"base": {"optim.lr_max": {"best_of": "lr_sweep", "times": 0.5}},
                          "variants": {"nope": {"model.pos_emb": "none"}}},
                "fixed": {"variants": {"a": {"model.pos_emb": "none", "optim.lr_max": 5.0e-3}}}}

    work = workdir_with_data(tmp_path, tokenized)
    targets = [f"{ROOT}/runs/{e}/{v}/summary.json" for e, v in (("tuned", "nope"), ("fixed", "a"))]
    first = sweep_config(tmp_path / "first.yaml", experiments([1.0e-2, 3.0e-2]))
    run_or_fail(work, *targets, configfile=first)
    selection = read_selection(work / ROOT / "selections/lr_sweep.json")
    tuned = read_summary(work / targets[0])
    assert tuned.config["optim"]["lr_max"] == pytest.approx(0.5 * selection.value)
    assert tuned.selected["optim.lr_max"].value == pytest.approx(0.5 * selection.value)
    assert tuned.selected["optim.lr_max"].source == f"{ROOT}/selections/lr_sweep.json"
    fixed_mtime = (work / targets[1]).stat().st_mtime

    # Another grid: a different winner; the run that takes it reruns with the new value, the fixed run does not.
    second = sweep_config(tmp_path / "second.yaml", experiments([2.0e-2, 4.0e-2]))
    plan = snakemake(work, *targets, "-n", configfile=second)
    assert plan.returncode == 0, output(plan)
    assert {w["variant"] for rule, w in planned_jobs(plan) if rule == "train_lm"} >= {"lr_max~0.02", "lr_max~0.04"}
    assert "select_best" in {rule for rule, _ in planned_jobs(plan)}
    run_or_fail(work, *targets, configfile=second)
    changed = read_selection(work / ROOT / "selections/lr_sweep.json")
    assert changed.value != selection.value
    assert read_summary(work / targets[0]).config["optim"]["lr_max"] == pytest.approx(0.5 * changed.value)
    assert (work / targets[1]).stat().st_mtime == fixed_mtime
    assert planned_jobs(snakemake(work, *targets, "-n", configfile=second)) == []


# ---- the edge search -------------------------------------------------------------------------------------

@pytest.mark.slow
def test_search_brackets_the_optimum_and_the_edge_round_by_round(tmp_path, tokenized):
    factor = 4.0
    config = sweep_config(tmp_path / "search.yaml", {"lr_sweep": {
        "grid": {"optim.lr_max": [1.0e-2]},
        "find_edge": {"factor": factor, "step": 30.0, "max_runs": 6, "optimum_factor": factor}}})
    work = workdir_with_data(tmp_path, tokenized)
    dry = snakemake(work, f"{ROOT}/selections/lr_sweep.json", "-n", configfile=config)
    assert dry.returncode == 0 and train_jobs(dry) == {"lr_sweep": 1}, output(dry)
    assert {"plan_sweep", "select_best"} <= {rule for rule, _ in planned_jobs(dry)}  # the pending checkpoints
    run_or_fail(work, f"{ROOT}/selections/lr_sweep.json", configfile=config)

    paths = sorted((work / ROOT / "sweeps/lr_sweep").glob("round*.json"), key=lambda p: int(p.stem[5:]))
    plans = [read_plan(p) for p in paths]
    # The one grid value is both ends of the range: the first round extends down for the optimum, up for the edge.
    assert plans[0].next == (0.000333, 0.3) and plans[0].purposes == ("optimum", "edge"), plans[0]
    selection = read_selection(work / ROOT / "selections/lr_sweep.json")
    assert selection.rounds == tuple(plans), "the selection records what each round was for"
    added = [v for p in plans for v in p.next]
    kinds = {c.value: c.kind for c in selection.candidates}
    assert sorted(kinds) == sorted([1.0e-2, *added]) and len(added) <= 6
    assert kinds[selection.value] == "stable"
    optimum, edge = selection.optimum, selection.edge
    assert optimum.best == selection.value
    # The search ends with both brackets within the factor, or at its bound with a round saying so.
    finished = optimum.bracketed and edge.factor is not None and edge.factor <= factor
    assert finished or "bound of 6 runs" in plans[-1].reason, plans[-1]
    # Each optimum value extends the range past the best's missing neighbour, or splits the gap to one it has.
    refinements = 0
    for plan in plans:
        for value, purpose in zip(plan.next, plan.purposes, strict=True):
            o = plan.optimum
            if "optimum" in purpose and o.below is not None and o.above is not None:
                assert o.below < value < o.above and value != o.best
                refinements += 1
            elif "optimum" in purpose:
                assert value < o.best if o.below is None else value > o.best
    assert refinements >= 1, "a round refined around the best"
    assert kinds[edge.largest_stable] == "stable"
    if edge.smallest_not_stable is not None:
        assert kinds[edge.smallest_not_stable] in ("unstable", "diverged")


@pytest.mark.slow
def test_seeds_repeat_a_run_and_measure_the_noise_floor(tmp_path, tokenized):
    config = sweep_config(tmp_path / "seeds.yaml", {"ablations": {
        "variants": {"baseline": {"optim.lr_max": 1.0e-2}, "nope": {"optim.lr_max": 1.0e-2, "model.pos_emb": "none"}},
        "seeds": {"baseline": 3}}})
    work = workdir_with_data(tmp_path, tokenized)
    noise_file = f"{ROOT}/selections/ablations.noise.json"
    dry = snakemake(work, "-n", configfile=config)
    assert dry.returncode == 0 and train_jobs(dry) == {"ablations": 4}, output(dry)  # baseline × 3 seeds, nope
    run_or_fail(work, noise_file, configfile=config)
    seeds = [read_summary(work / ROOT / "runs/ablations" / v / "summary.json").config["train"]["seed"]
             for v in ("baseline", "baseline__seed~1", "baseline__seed~2")]
    assert seeds == [0, 1, 2]
    noise = read_noise(work / noise_file)
    losses = noise.losses["baseline"]
    assert len(losses) == 3 and len(set(losses)) == 3, "each seed trains its own run"
    mean = sum(losses) / 3
    assert noise.sigma == pytest.approx(math.sqrt(sum((x - mean) ** 2 for x in losses) / 2))
    bad = sweep_config(tmp_path / "bad.yaml", {"ablations": {
        "variants": {"baseline": {"optim.lr_max": 1.0e-2}}, "seeds": {"basline": 3}}})
    refused = snakemake(work, "-n", configfile=bad)
    assert refused.returncode != 0 and "experiments.ablations.seeds.basline: no such variant" in output(refused)


@pytest.mark.slow
def test_leaderboard_combines_the_candidates_that_helped_beyond_the_noise_floor(tmp_path, tokenized):
    experiments = {
        "cands": {"seeds": 2, "base": {"optim.lr_max": 1.0e-2, "train.token_budget": 25600},
                  "variants": {"baseline": {}, "qk_norm": {"model.qk_norm": "rmsnorm"},
                               "longer": {"train.token_budget": 3 * 25600}}},
        "board": {"combine": "cands", "base": {"optim.lr_max": 1.0e-2}, "variants": {"main": {}}},
    }
    config = sweep_config(tmp_path / "config.yaml", experiments)
    work = workdir_with_data(tmp_path, tokenized)
    run_or_fail(work, f"{ROOT}/runs/board/main/summary.json", configfile=config)
    combination_file = f"{ROOT}/selections/cands.combination.json"
    combination = json.loads((work / combination_file).read_text())

    def losses(variant):
        return [read_summary(work / ROOT / "runs/cands" / name / "summary.json").final_val_loss
                for name in (variant, f"{variant}__seed~1")]

    # The choice, recomputed by hand from the runs' own summaries: the pooled σ of the three pairs of seeds, and
    # a modification kept when its mean beats the baseline's by more than 2 × √2 × σ.
    arms = {v: losses(v) for v in ("baseline", "qk_norm", "longer")}
    assert all(len(set(pair)) == 2 for pair in arms.values()), "each seed trains its own run"
    sigma = math.sqrt(sum((a - b) ** 2 / 2 for a, b in arms.values()) / 3)
    assert combination["sigma"] == pytest.approx(sigma) and combination["resolution"] == pytest.approx(
        2 * math.sqrt(2) * sigma)
    base = sum(arms["baseline"]) / 2
    expected = []
    for effect in combination["effects"]:
        improvement = base - sum(arms[effect["variant"]]) / 2
        assert effect["improvement"] == pytest.approx(improvement)
        assert effect["helped"] == (improvement > 2 * math.sqrt(2) * sigma)
        expected += [effect["variant"]] if effect["helped"] else []
    assert "longer" in expected, "three times the tokens helps beyond any seed noise"
    assert combination["combined"] == expected
    # The combining run trains with exactly the combined overrides, and says where they came from.
    board = read_summary(work / ROOT / "runs/board/main/summary.json")
    assert board.config["train"]["token_budget"] == 3 * 25600
    assert board.config["model"]["qk_norm"] == ("rmsnorm" if "qk_norm" in expected else "none")
    assert {k: v.source for k, v in board.selected.items()} == {k: combination_file for k in combination["overrides"]}


@pytest.mark.slow
def test_a_tuned_choice_at_the_end_of_its_range_extends_it(tmp_path, tokenized):
    # Within 25 steps a larger rate learns more: the larger of the two is best, so the range extends once, × 2.
    # The × 1 candidate at the sweep's batch size is the sweep's own run, trained once.
    config = sweep_config(tmp_path / "tune.yaml", {
        "lr_sweep": {"grid": {"optim.lr_max": [1.0e-2]}},
        "batch_size": {"grid": {"train.batch_size": [16]},
                       "base": {"optim.lr_max": {"best_of": "lr_sweep", "batch_power": 0.5}},
                       "tune": {"optim.lr_max": [1.0, 2.0]}, "tune_extend": {"max_runs": 1}}})
    work = workdir_with_data(tmp_path, tokenized)
    selection_file = f"{ROOT}/selections/batch_size/batch_size~16.json"
    run_or_fail(work, selection_file, configfile=config)
    plans = [read_plan(work / ROOT / f"sweeps/batch_size/batch_size~16/round{r}.json") for r in (0, 1)]
    assert plans[0].next == (4.0,) and "is the largest tried: extending up to factor 4" in plans[0].reason
    assert plans[1].next == () and ("bound of 1 runs" in plans[1].reason or "interior" in plans[1].reason)
    selection = read_selection(work / selection_file)
    assert selection.rounds == tuple(plans)
    assert sorted(c.variant for c in selection.candidates) == [
        "batch_size~16__lr_max~x1", "batch_size~16__lr_max~x2", "batch_size~16__lr_max~x4"]
    assert selection.optimum is not None and selection.optimum.best == selection.value


# ---- batch size up to the memory limit -------------------------------------------------------------------

@pytest.mark.slow
def test_probe_finds_a_planted_memory_cap_and_max_fills_the_grid_up_to_it(tmp_path):
    def config(cap_mb: int) -> Path:
        return sweep_config(tmp_path / f"cap{cap_mb}.yaml", {"batch_size": {
            "grid": {"train.batch_size": [2, "max"]}, "probe": {"memory_cap_mb": cap_mb, "limit": 64},
            "base": {"model.context_length": 128, "model.d_model": 128, "model.d_ff": 256}}})

    work, probe = tmp_path / "work", f"{ROOT}/probes/batch_size.json"
    work.mkdir()
    run_or_fail(work, probe, configfile=config(100_000))  # no real cap: every batch up to the limit fits
    unbounded = json.loads((work / probe).read_text())
    assert unbounded["batch_size"] == 64
    peaks = {t["batch_size"]: t["peak_bytes"] for t in unbounded["trials"]}
    assert peaks[32] > peaks[16] * 1.1, peaks  # activations dominate: the cap below can sit between them
    planted = math.ceil((peaks[16] + peaks[32]) / 2 / 2**20)

    run_or_fail(work, probe, configfile=config(planted))  # a changed cap reruns the probe
    found = json.loads((work / probe).read_text())
    assert 16 <= found["batch_size"] < 32, found
    assert found["memory_cap_bytes"] == planted * 2**20
    dry = snakemake(work, "-n", configfile=config(planted))
    assert dry.returncode == 0, output(dry)
    batch_sizes = sorted(int(w["variant"].split("~")[1]) for rule, w in planned_jobs(dry) if rule == "train_lm")
    # The named 2, the powers of two below the batch that fits, and that batch itself.
    assert batch_sizes == [2, 4, 8, 16] + ([found["batch_size"]] if found["batch_size"] > 16 else [])


# ---- dry runs ----------------------------------------------------------------------------------------------

def test_course_dry_run_lists_every_run_and_trains_identical_names_once(tmp_path):
    result = snakemake(tmp_path, "-n", configfile=COURSE_CONFIG)
    assert result.returncode == 0, output(result)
    course = yaml.safe_load(COURSE_CONFIG.read_text())["experiments"]
    jobs = train_jobs(result)
    trained = {(w["experiment"], w["variant"]) for rule, w in planned_jobs(result) if rule == "train_lm"}
    assert jobs["lr_sweep"] == len(course["lr_sweep"]["grid"]["optim.lr_max"])
    repeats = {f"baseline__seed~{k}" for k in range(1, course["ablations"]["seeds"]["baseline"])}
    # The baseline is the lr sweep's best run; its repeats with other seeds train as runs of their own.
    assert {v for e, v in trained if e == "ablations"} == set(course["ablations"]["variants"]) - {"baseline"} | repeats
    assert "ts_main" not in jobs  # the ablation baseline and ts_main are the lr sweep's best run
    assert jobs["owt_main"] == jobs["leaderboard"] == 1
    # `seeds: 2`: every candidate, the baseline among them, with a second seed.
    candidates = course["leaderboard_candidates"]
    assert {v for e, v in trained if e == "leaderboard_candidates"} == {
        name for v in candidates["variants"] for name in (v, f"{v}__seed~1")}
    assert jobs["leaderboard_lr"] == len(course["leaderboard_lr"]["grid"]["optim.lr_max"])
    named_batch_sizes = [b for b in course["batch_size"]["grid"]["train.batch_size"] if b != "max"]
    assert jobs["batch_size"] == 3 * len(named_batch_sizes)  # three lrs each; `max` waits for its probe
    # Every name but the two that are the lr sweep's best run, and the batch sizes (each the best of its three).
    named = sum(len(spec.get("variants", [])) for spec in course.values())
    names = (named + jobs["lr_sweep"] + jobs["leaderboard_lr"] + 4 * len(named_batch_sizes) + len(repeats)
             + len(candidates["variants"]))
    assert sum(jobs.values()) == names - 2 - len(named_batch_sizes)
    checkpoints = Counter(rule for rule, _ in planned_jobs(result) if rule in (
        "plan_sweep", "select_best", "probe_batch_size", "select_combination"))
    # Pending: the edge search's first round, the lr sweep's choice, the probe (each batch size's choice waits for
    # the probe, which decides which batch sizes there are), the candidates' combination and the rate re-tuned
    # for it.
    assert checkpoints == {"plan_sweep": 1, "select_best": 2, "probe_batch_size": 1, "select_combination": 1}
    assert "checkpoint jobs" in output(result)


def test_demo_profile_dry_run_job_counts(tmp_path):
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(tmp_path),
               "--profile", str(REPO / "profiles/demo"), "-n"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, output(result)
    # Before anything trains: the lr grid (4 rates), 3 lrs for each named batch size (1, 8, 32) but the one that
    # is the lr sweep's winner (batch 32 × 1), five ablations and the baseline's two more seeds (the baseline is
    # the winner), ts_main none (the winner), OWT and the leaderboard one each, the four leaderboard candidates
    # (the baseline among them) with two seeds each, and two rates for their combination.
    assert train_jobs(result) == {"lr_sweep": 4, "batch_size": 8, "ablations": 7, "owt_main": 1, "leaderboard": 1,
                                  "leaderboard_candidates": 8, "leaderboard_lr": 2}
    rules = Counter(rule for rule, _ in planned_jobs(result))
    assert rules["plan_sweep"] == rules["probe_batch_size"] == rules["select_combination"] == 1
    assert rules["select_best"] == 2
    assert rules["synthesize_corpus"] == 4 and rules["train_bpe"] == 2 and rules["tokenize_corpus"] == 4
    assert re.search(r"^train_lm\s+31$", output(result), re.M), output(result)
