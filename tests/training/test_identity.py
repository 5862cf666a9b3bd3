"""cs336lm.training.identity: which config changes keep a run the same run, for resume (the trajectory so far),
dedup (the run trained) and the report's repeats (all but the seed)."""

from __future__ import annotations

import pytest

from cs336lm.config import RunConfig
from cs336lm.training.identity import (
    ENDING_KEYS,
    EXECUTION_KEYS,
    differences,
    repeats,
    run_identity,
    trajectory_changes,
)

BASE = RunConfig.from_flat({"train.token_budget": 4096, "train.batch_size": 8, "model.context_length": 16})


def changed(**flat) -> RunConfig:
    return RunConfig.from_flat({k.replace("__", "."): v for k, v in flat.items()}, base=BASE)


def test_key_kinds_are_config_keys_and_disjoint():
    keys = set(BASE.to_flat())
    assert EXECUTION_KEYS <= keys and ENDING_KEYS <= keys and not EXECUTION_KEYS & ENDING_KEYS
    assert "train.seed" not in EXECUTION_KEYS | ENDING_KEYS


def test_differences_name_each_changed_key_with_both_values():
    other = changed(optim__lr_max=3e-3, train__device="cpu")
    assert differences(BASE, other) == {"optim.lr_max": (1e-3, 3e-3), "train.device": ("auto", "cpu")}
    assert differences(BASE, other, ignore=["train.device"]) == {"optim.lr_max": (1e-3, 3e-3)}


@pytest.mark.parametrize(("change", "resumes", "same_run"), [
    ({"train__device": "cpu"}, True, True),
    ({"train__implementation": "reference"}, True, True),
    ({"train__log_interval": 7}, True, True),
    ({"train__eval_every_tokens": 1024}, True, True),
    ({"train__checkpoint_minutes": 1.0}, True, True),
    # Where the run ends: a checkpoint continues, but the finished runs differ.
    ({"train__wall_clock_budget_s": 60.0}, True, False),
    ({"train__final_eval_tokens": 512}, True, False),
    ({"train__divergence_factor": 3.0}, True, False),
    # What is learned.
    ({"optim__lr_max": 3e-3}, False, False),
    ({"train__seed": 1}, False, False),
    ({"model__pos_emb": "none"}, False, False),
    ({"train__batch_size": 4}, False, False),
])
def test_resume_and_dedup_agree_on_every_kind_of_key(change, resumes, same_run):
    other = changed(**change)
    assert (not trajectory_changes(BASE, other)) is resumes
    assert (run_identity(BASE) == run_identity(other)) is same_run


def test_a_trajectory_change_lists_only_the_keys_that_matter():
    other = changed(optim__lr_max=3e-3, train__device="cpu", train__wall_clock_budget_s=60.0)
    assert trajectory_changes(BASE, other) == {"optim.lr_max": (1e-3, 3e-3)}


def test_identity_takes_overrides_and_can_leave_a_key_out():
    a, b = BASE, changed(optim__lr_max=3e-3)
    assert run_identity(a, {"optim.lr_max": "chosen"}) == run_identity(b, {"optim.lr_max": "chosen"})
    assert run_identity(a, ignore=["optim.lr_max"]) == run_identity(b, ignore=["optim.lr_max"])
    assert run_identity(a) != run_identity(b)
    assert hash(run_identity(a)) == hash(run_identity(changed(train__device="cpu")))


def test_repeats_differ_in_the_seed_and_nothing_that_changes_the_result():
    assert repeats(BASE, changed(train__seed=1))
    assert repeats(BASE, changed(train__seed=1, train__device="cpu", train__log_interval=3))
    assert not repeats(BASE, BASE), "the same seed is the same run, not a repeat"
    assert not repeats(BASE, changed(train__seed=1, optim__lr_max=3e-3))
    assert not repeats(BASE, changed(train__seed=1, train__final_eval_tokens=512))
