"""cs336lm.experiments.design: runs from a workflow config, values from another experiment's sweep, which names train
once (identical configs, a sweep's winner), per-variant tuning, names added by an edge search or `max`, and errors
that name the config key."""

from __future__ import annotations

import copy

import pytest

from cs336lm.config import ConfigError
from cs336lm.experiments.dedup import SameAs, Trains, WinnerOf
from cs336lm.experiments.design import Design, Reference, fill_batch_sizes
from tests.helpers import DESIGN_BASE, set_key


def design(edit=None) -> Design:
    config = copy.deepcopy(DESIGN_BASE)
    if edit:
        edit(config)
    return Design(config)


def test_runs_and_where_each_trains():
    d = design()
    sources = {f"{e}/{v}": d.source(run) for (e, v), run in d.runs.items()}
    assert sources["lr_sweep/lr_max~0.001"] == Trains()
    # The baseline and the main run equal the sweep's runs but for the lr it chooses: they are its winner.
    assert sources["ablations/baseline"] == WinnerOf("lr_sweep") and sources["main/main"] == WinnerOf("lr_sweep")
    assert sources["ablations/nope"] == Trains() and sources["ablations/low"] == Trains()
    assert sources["web/main"] == Trains()  # another dataset: never the same run
    # Identical literal configs (the seed written out equals the default) train once, under the first name.
    assert sources["copies/a"] == sources["copies/b"] == SameAs("lr_sweep", "lr_max~0.01")
    # How a run is carried out (logging, device) leaves it the same run; where it ends or its seed do not
    # (cs336lm.training.identity).
    assert sources["copies/logged"] == SameAs("lr_sweep", "lr_max~0.01")
    assert sources["copies/timed"] == Trains() and sources["copies/seeded"] == Trains()
    # A tuned batch size is the best of its candidates; at the sweep's batch size the ×1 candidate is the winner.
    assert sources["batch_size/batch_size~2"] == WinnerOf("batch_size/batch_size~2")
    assert sources["batch_size/batch_size~8__lr_max~x1"] == WinnerOf("lr_sweep")
    assert sources["batch_size/batch_size~2__lr_max~x1"] == Trains()
    assert d.candidates("batch_size", "batch_size~2") == ["batch_size~2__lr_max~x0.5", "batch_size~2__lr_max~x1"]


def test_references_resolve_with_times_and_batch_scaling():
    d = design()
    low = d.runs["ablations", "low"]
    assert low.references == {"optim.lr_max": Reference("lr_sweep", 0.25)}
    assert d.resolve(low, {"lr_sweep": 4e-3}).optim.lr_max == pytest.approx(1e-3)
    candidate = d.runs["batch_size", "batch_size~2__lr_max~x0.5"]
    # 0.01 × sqrt(2 / 8) × 0.5
    assert d.resolve(candidate, {"lr_sweep": 1e-2}).optim.lr_max == pytest.approx(2.5e-3)
    assert d.chosen_values(low, {"lr_sweep": 4e-3}) == {"optim.lr_max": pytest.approx(1e-3)}


def test_a_resolved_value_the_config_refuses_names_the_run_and_the_choice():
    with pytest.raises(ConfigError, match=r"defaults.optim.lr_min = 1e-05 is above experiments.ablations.variants.low."
                                          r"optim.lr_max = 2.5e-06 \(run ablations/low, after the sweeps chose: "
                                          r"optim.lr_max = \{best_of: lr_sweep, times: 0.25\} -> 2.5e-06\)"):
        design().resolve(design().runs["ablations", "low"], {"lr_sweep": 1e-5})


def test_names_added_by_an_edge_search_or_max_resolve_to_runs():
    d = design()
    added = d.run("lr_sweep", d.variant_name("lr_sweep", 0.0173))
    assert added.variant == "lr_max~0.0173" and added.config.optim.lr_max == 0.0173 and d.source(added) == Trains()
    batch = d.run("batch_size", "batch_size~32")
    assert batch.config.train.batch_size == 32 and d.source(batch) == WinnerOf("batch_size/batch_size~32")
    candidate = d.run("batch_size", "batch_size~32__lr_max~x1")
    assert d.resolve(candidate, {"lr_sweep": 1e-2}).optim.lr_max == pytest.approx(2e-2)
    for experiment, variant in [("lr_sweep", "lr_max~abc"), ("lr_sweep", "lr_max~0.0100"), ("copies", "c"),
                                ("batch_size", "batch_size~3.5"), ("batch_size", "batch_size~32__lr_max~x3")]:
        with pytest.raises(ConfigError, match=f"experiments.{experiment} has no"):
            d.run(experiment, variant)


def test_seeds_repeat_a_variant_with_the_next_seeds_and_train_separately():
    d = design(set_key("experiments/ablations/seeds", {"baseline": 3, "nope": 1}))
    assert d.seed_groups("ablations") == {"baseline": ["baseline", "baseline__seed~1", "baseline__seed~2"],
                                          "nope": ["nope"]}
    repeat = d.run("ablations", "baseline__seed~2")
    assert repeat.config.train.seed == 2 and repeat.references == {"optim.lr_max": Reference("lr_sweep")}
    assert d.source(repeat) == Trains(), "another seed is another run, not the sweep's winner"
    assert d.source(d.run("ablations", "baseline")) == WinnerOf("lr_sweep")
    seeded = design(lambda c: (set_key("experiments/copies/seeds", {"b": 2})(c),
                               set_key("experiments/copies/variants/b/train.seed", 5)(c)))
    assert seeded.run("copies", "b__seed~6").config.train.seed == 6, "counted up from the variant's own seed"


@pytest.mark.parametrize(("seeds", "message"), [
    ({"basline": 3}, "experiments.ablations.seeds.basline: no such variant (variants: baseline, nope, low)"),
    ({"baseline": 0}, "experiments.ablations.seeds.baseline = 0 must be a whole number of seeds >= 1"),
    ({"baseline": 2.5}, "experiments.ablations.seeds.baseline = 2.5 must be a whole number"),
])
def test_bad_seeds_name_the_key(seeds, message):
    with pytest.raises(ConfigError) as error:
        design(set_key("experiments/ablations/seeds", seeds))
    assert message in str(error.value)


def test_seeds_on_a_tuned_experiment_are_refused():
    with pytest.raises(ConfigError, match=r"experiments.batch_size.seeds: each variant of a tuned experiment"):
        design(set_key("experiments/batch_size/seeds", {"batch_size~2": 2}))


def test_fill_batch_sizes_adds_powers_of_two_up_to_the_largest_that_fits():
    assert fill_batch_sizes([1, 8, 32], 200) == [64, 128, 200]
    assert fill_batch_sizes([1, 8, 32], 128) == [64, 128]
    assert fill_batch_sizes([1, 8, 32], 16) == [16]
    assert fill_batch_sizes([1, 8, 32], 32) == []


@pytest.mark.parametrize(("edit", "message"), [
    (set_key("experiments/main/base/optim.lr_max", {"best_of": "lr_swep"}),
     "experiments.main: optim.lr_max = {best_of: lr_swep}: best_of 'lr_swep' is not an experiment"),
    (set_key("experiments/main/base/optim.lr_max", {"best_of": "ablations"}),
     "best_of 'ablations' has no grid over one key"),
    (set_key("experiments/main/base/optim.lr_max", {"best_of": "batch_size"}),
     "experiments.batch_size takes values from another sweep itself"),
    (set_key("experiments/main/base/model.norm", {"best_of": "lr_sweep"}), "model.norm is not a number"),
    (set_key("experiments/main/base/optim.lr_max", {"best_of": "lr_sweep", "time": 2}),
     "experiments.main.base.optim.lr_max = {'best_of': 'lr_sweep', 'time': 2}: a value from a sweep is written"),
    (set_key("experiments/lr_sweep/base", {"optim.lr_min": {"best_of": "lr_sweep", "times": 0.1}}),
     "cannot take a value from its own sweep"),
    (set_key("experiments/copies/grid", {"train.batch_size": [1, "max"], "optim.lr_max": [1.0e-3]}),
     "experiments.copies.grid: `max` is only for a grid over train.batch_size alone"),
    (set_key("experiments/batch_size/find_edge", {"factor": 2.0, "step": 3.0, "max_runs": 2}),
     "experiments.batch_size.find_edge needs a grid over one numeric key"),
])
def test_bad_references_and_sweeps_name_the_key(edit, message):
    with pytest.raises(ConfigError) as error:
        design(edit)
    assert message in str(error.value)


@pytest.mark.parametrize("config_file", ["config.yaml", "profiles/demo/demo.yaml", "tests/data/tiny_config.yaml"])
def test_the_main_runs_train_the_same_model_for_the_same_iterations(config_file):
    import yaml

    from tests.workflow.test_workflow import REPO

    config = yaml.safe_load((REPO / config_file).read_text())
    built = Design(config)
    runs = [built.runs[e, v] for e in config["report"]["main"] for (x, v) in built.runs if x == e]
    assert len(runs) == 2 and len({r.dataset for r in runs}) == 2
    assert len({r.config.num_iterations for r in runs}) == 1
    assert len({(r.config.model.d_model, r.config.model.num_layers, r.config.model.d_ff) for r in runs}) == 1
    built.check_same_training(config["report"]["main"], "handout §7.4")


def test_main_runs_of_different_iterations_are_refused_naming_the_key():
    def longer(config):
        config["experiments"]["web"]["base"]["train.token_budget"] = 8192

    with pytest.raises(ConfigError, match=r"web/main has num_iterations = 64 but main/main has 32: handout §7.4"):
        design(longer).check_same_training(["main", "web"], "handout §7.4")
    design().check_same_training(["main", "web"], "handout §7.4")  # the same defaults: accepted
