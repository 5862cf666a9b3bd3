"""cs336lm.experiments.combination and the candidates and combining experiments of cs336lm.experiments.design: each
modification's effect against the baseline judged with the noise floor (hand-computed), the combination of those
that helped, the file round trip, and config errors that name the variants and keys that cannot be combined."""

from __future__ import annotations

import copy
import math

import pytest

from cs336lm.config import ConfigError
from cs336lm.experiments.combination import CombinationError, choose_combination, read_combination, write_combination
from cs336lm.experiments.dedup import SameAs, Trains
from cs336lm.experiments.design import Design
from cs336lm.experiments.noise import measure_noise
from tests.helpers import DESIGN_BASE

LOSSES = {"baseline": [4.00, 4.02], "tied": [3.90, 3.92], "qk": [3.97, 3.99], "worse": [4.10, 4.12],
          "broke": [3.0, None]}
OVERRIDES = {"tied": {"model.head": "tied"}, "qk": {"model.qk_norm": "rmsnorm"}, "worse": {"train.z_loss": 1.0},
             "broke": {"model.logit_softcap": 1.0}}


def choose(losses=LOSSES):
    losses = dict(losses)
    noise = measure_noise("cands", losses)
    baseline = losses.pop("baseline")
    return noise, choose_combination(noise, baseline, losses, {v: OVERRIDES[v] for v in losses})


def test_combination_keeps_what_helped_beyond_the_noise_floor_by_hand():
    noise, combination = choose()
    # Every pair of stable seeds is 0.02 apart: pooled σ² = 4 × 2 × 0.01² / 4 dof = 0.0002 (broke's lone stable
    # seed adds no degree of freedom), so σ = 0.01414 and the resolution is 2 × √2 × σ = 0.04.
    assert noise.sigma == pytest.approx(math.sqrt(0.0002)) and noise.resolution == pytest.approx(0.04)
    assert combination.sigma == noise.sigma and combination.resolution == noise.resolution
    assert combination.baseline_mean == pytest.approx(4.01)
    effects = {e.variant: e for e in combination.effects}
    assert effects["tied"].improvement == pytest.approx(0.10) and effects["tied"].helped  # 0.10 > 0.04
    assert effects["qk"].improvement == pytest.approx(0.03) and not effects["qk"].helped  # within the noise
    assert effects["worse"].improvement == pytest.approx(-0.10) and not effects["worse"].helped  # resolved, worse
    assert effects["broke"].improvement is None and not effects["broke"].helped  # a seed that was not stable
    assert effects["broke"].losses == [3.0, None]
    assert combination.combined == ["tied"] and combination.overrides == {"model.head": "tied"}
    assert "tied (+0.1000 nats, resolved above 0.0400)" in combination.why
    assert "noise floor σ is the pooled sample standard deviation" in combination.rule


def test_two_helpful_modifications_merge_their_overrides_in_config_order():
    _, combination = choose({**LOSSES, "qk": [3.94, 3.96]})  # 0.06 > 0.04
    assert combination.combined == ["tied", "qk"]
    assert combination.overrides == {"model.head": "tied", "model.qk_norm": "rmsnorm"}


def test_nothing_helped_keeps_the_baseline_and_an_unstable_baseline_or_no_noise_is_an_error():
    _, combination = choose({"baseline": [4.00, 4.02], "qk": [3.99, 4.00]})
    assert combination.combined == [] and combination.overrides == {} and "baseline is kept" in combination.why
    with pytest.raises(CombinationError, match=r"the baseline of cands has a seed that was not stable"):
        choose({"baseline": [4.00, None], "tied": [3.90, 3.92]})
    with pytest.raises(CombinationError, match="the noise floor of cands is not measured"):
        choose({"baseline": [4.00], "tied": [3.90]})


def test_combination_file_round_trip(tmp_path):
    _, combination = choose()
    write_combination(tmp_path / "c.json", combination)
    assert read_combination(tmp_path / "c.json") == combination
    (tmp_path / "bad.json").write_text('{"combination_version": 1, "experiment": "cands"}')
    with pytest.raises(CombinationError, match="bad.json is not a version-1 combination file"):
        read_combination(tmp_path / "bad.json")


# ---- in the experiment design --------------------------------------------------------------------------------

def design(candidates: dict, seeds=2, **board) -> Design:
    config = copy.deepcopy(DESIGN_BASE)
    config["experiments"]["cands"] = {"dataset": "web", "seeds": seeds, "variants": candidates,
                                      "base": {"optim.lr_max": {"best_of": "lr_sweep"}}}
    config["experiments"]["board"] = {"dataset": "web", "combine": "cands", "variants": {"main": {}}, **board}
    return Design(config)


CANDIDATES = {"baseline": {}, "tied": {"model.head": "tied"}, "qk": {"model.qk_norm": "rmsnorm"}}


def test_seeds_shorthand_repeats_every_variant_and_the_combining_run_resolves_with_the_choice():
    d = design(CANDIDATES)
    names = [v for e, v in d.runs if e == "cands"]
    assert names == ["baseline", "baseline__seed~1", "tied", "tied__seed~1", "qk", "qk__seed~1"]
    assert [d.runs["cands", n].config.train.seed for n in names] == [0, 1] * 3
    assert d.arms("cands") == {v: [v, f"{v}__seed~1"] for v in CANDIDATES}
    assert d.arms("cands") == d.seed_groups("cands")  # `seeds: 2` is {every variant: 2}
    assert d.modifications("cands") == {"tied": {"model.head": "tied"}, "qk": {"model.qk_norm": "rmsnorm"}}
    # The baseline's first seed is web/main (the same config): trained once. The combining run trains on its own,
    # even where its written config equals another run's: what it combines is part of what it trains.
    assert d.source(d.runs["cands", "baseline"]) == SameAs("web", "main")
    board = d.runs["board", "main"]
    assert d.source(board) == Trains() and board.combine == "cands"
    resolved = d.resolve(board, {}, {"model.qk_norm": "rmsnorm"})
    assert resolved.model.qk_norm == "rmsnorm" and resolved.model.head == "untied"
    # Seeds for the baseline alone are enough for a noise floor; the modifications then train once each.
    assert design(CANDIDATES, seeds={"baseline": 3}).arms("cands")["tied"] == ["tied"]


@pytest.mark.parametrize(("candidates", "seeds", "board", "expected"), [
    ({**CANDIDATES, "qk": {"model.qk_nrom": "rmsnorm"}}, 2, {},
     ["model.qk_nrom", "experiments.cands.variants.qk", "did you mean 'model.qk_norm'"]),
    ({**CANDIDATES, "small": {"model.d_ff": 16}, "smaller": {"model.d_ff": 8}}, 2, {},
     ["experiments.cands.variants.smaller.model.d_ff = 8 conflicts with variants.small.model.d_ff = 16"]),
    ({**CANDIDATES, "heads": {"model.num_heads": 8}, "wide": {"model.d_model": 40}}, 2, {},
     ["experiments.board.combine = 'cands': the modifications of", "together do not make a valid run board/main",
      "RoPE needs an even head dimension"]),
    ({"tied": {"model.head": "tied"}}, 2, {},
     ["experiments.board.combine = 'cands': experiments.cands needs a `baseline` variant and `seeds`"]),
    (CANDIDATES, {"tied": 1}, {}, ["experiments.cands needs a `baseline` variant and `seeds`"]),
    (CANDIDATES, 2, {"combine": "cnads"}, ["experiments.board.combine = 'cnads' is not an experiment"]),
    ({**CANDIDATES, "lr": {"optim.lr_max": {"best_of": "lr_sweep", "times": 2.0}}}, 2, {},
     ["experiments.cands.variants.lr.optim.lr_max = {best_of: lr_sweep, times: 2}: a modification to combine "
      "must be a fixed value"]),
    ({**CANDIDATES, "seeded": {"train.seed": 5}}, 2, {}, ["experiments.cands.variants.seeded.train.seed = 5"]),
    ({**CANDIDATES, "baseline": {"model.d_ff": 48}}, 2, {}, ["experiments.cands.variants.baseline must be empty"]),
], ids=["unknown-key", "conflicting-values", "invalid-together", "no-baseline", "no-seeds", "unknown-experiment",
        "reference", "own-seed", "baseline-not-empty"])
def test_bad_candidates_or_combinations_are_config_errors_naming_them(candidates, seeds, board, expected):
    with pytest.raises(ConfigError) as error:
        design(candidates, seeds, **board)
    for text in expected:
        assert text in str(error.value), str(error.value)
