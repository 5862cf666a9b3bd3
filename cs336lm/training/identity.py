"""When two run configs are one run: the single definition behind resuming a checkpoint, training once the names
that ask for the same run, and telling a run repeated with another seed.

A RunConfig's keys are of three kinds:

- how the run is carried out (EXECUTION_KEYS): the device and its fast paths, each equal to the reference to
  tolerance (tested), and how often it logs, evaluates on the fixed sample and checkpoints. They change speed and
  records, not the model learned nor its final result.
- where it ends and how its end is judged (ENDING_KEYS): a wall-clock budget, the tokens of the final evaluation,
  the divergence rule. They leave every step so far unchanged, so a checkpoint continues under new values; but two
  runs that differ in one end differently.
- everything else, the seed among them, decides what is learned.

Hence three questions with one answer each: a checkpoint resumes under a config with the same trajectory
(`trajectory_changes` is empty); names with the same `run_identity` train once; two runs with another seed but
otherwise the same identity are repeats (`repeats`), whose difference measures run-to-run noise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cs336lm.config import RunConfig

EXECUTION_KEYS = frozenset({
    "train.device", "train.implementation", "train.dtype", "train.compile", "model.attention_backend",
    "optim.implementation", "train.log_interval", "train.eval_every_tokens", "train.checkpoint_interval",
    "train.checkpoint_minutes",
})
ENDING_KEYS = frozenset({"train.final_eval_tokens", "train.wall_clock_budget_s", "train.divergence_factor"})
SEED_KEY = "train.seed"


def differences(before: RunConfig, after: RunConfig, ignore: Iterable[str] = ()) -> dict[str, tuple[Any, Any]]:
    """{dotted key: (before's value, after's value)} of every key outside `ignore` on which the configs differ."""
    ignored, old, new = set(ignore), before.to_flat(), after.to_flat()
    return {key: (old[key], value) for key, value in new.items() if key not in ignored and old[key] != value}


def trajectory_changes(saved: RunConfig, config: RunConfig) -> dict[str, tuple[Any, Any]]:
    """The keys on which a checkpoint's config and the run resuming it differ in what the steps so far did: none,
    and the run continues from the checkpoint."""
    return differences(saved, config, EXECUTION_KEYS | ENDING_KEYS)


def run_identity(config: RunConfig, overrides: dict[str, Any] | None = None, ignore: Iterable[str] = ()) -> tuple:
    """A hashable identity of the run a config trains: equal for two configs that differ only in how they are
    carried out. `overrides` replace values first (a value a sweep will choose, by its reference); `ignore` leaves
    keys out (to compare runs but for one key)."""
    ignored = EXECUTION_KEYS | set(ignore)
    flat = {**config.to_flat(), **(overrides or {})}
    return tuple(sorted((key, value) for key, value in flat.items() if key not in ignored))


def repeats(a: RunConfig, b: RunConfig) -> bool:
    """The same run but for the seed: two draws of one experiment."""
    return set(differences(a, b, EXECUTION_KEYS)) == {SEED_KEY}
