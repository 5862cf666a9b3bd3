"""A run's summary.json as a typed contract (DESIGN.md §5, §9): `RunSummary`, written by the trainer with
`write_summary` and read everywhere else only through `read_summary`, which checks every field and its type, so a
file from another version or a hand edit fails with the file and the field named instead of a KeyError later.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from cs336lm.atomic import atomic_write_text

SUMMARY_VERSION = 1


class SummaryError(ValueError):
    """summary.json is missing, malformed or from another version; the message names the file."""


@dataclass(frozen=True)
class Parameters:
    total: int
    non_embedding: int  # all but the token embeddings (see cs336lm.lm.model.count_parameters)


@dataclass(frozen=True)
class Implementation:
    """What train.implementation asked for and what each fast path resolved to (cs336lm.training.implementation)."""

    requested: str  # auto | fast | reference
    attention: str  # reference | sdpa
    dtype: str  # float32 | bfloat16
    compile: bool
    optimizer: str  # reference | foreach | fused


@dataclass(frozen=True)
class Dataset:
    name: str | None  # e.g. tinystories
    source: str | None  # where its text came from (URL, or the synthetic corpus's settings)


@dataclass(frozen=True)
class SelectedValue:
    """A config value that another experiment's outcome chose (e.g. optim.lr_max from the lr sweep)."""

    value: Any
    source: str  # the selection file that holds the choice and why


@dataclass(frozen=True)
class JobTimes:
    """Where the whole job's time went, in seconds summed over its attempts (each counted up to its last
    checkpoint, and this one up to writing the summary). Under a wall-clock budget, total_s stays within it."""

    budget_s: float | None  # train.wall_clock_budget_s; None without one
    startup_s: float  # from the job's start to its first training step: imports, data, model, resume
    compile_s: float  # the first step's time beyond a typical step's: compilation and warm-up (in train_s)
    train_s: float  # the training steps (= wall_time_s)
    eval_s: float  # periodic and final evaluation
    checkpoint_s: float  # progress checkpoints
    write_s: float  # the model and metrics outputs
    total_s: float  # everything, start to the summary


@dataclass(frozen=True)
class RunSummary:
    status: str  # ok | diverged (cs336lm.training.divergence)
    stopped_early: str | None  # None | diverged | wall_clock
    divergence: str | None  # why the run counts as diverged, in words; None when it did not
    final_val_loss: float | None  # of the finished model, over final_val_tokens; None if its loss is not finite
    final_val_tokens: int  # the whole validation split unless train.final_eval_tokens says otherwise
    best_val_loss: float | None  # lowest val_loss in metrics.jsonl (the periodic evaluations and the final one)
    final_train_loss: float | None  # mean over the last metrics line's steps; None if not finite
    no_learning_loss: float  # unigram entropy of the training tokens (nats): the loss of predicting frequencies
    steps: int
    num_iterations: int  # steps the token budget allows
    tokens: int
    wall_time_s: float  # training time only, over all attempts (evaluation and checkpoints excluded)
    eval_time_s: float  # periodic and final evaluation of this attempt
    tokens_per_s: float | None  # tokens / wall_time_s
    job: JobTimes
    parameters: Parameters
    flops_per_token: float
    mfu: float | None  # None where the device's peak is unknown (CPUs, unlisted GPUs)
    implementation: Implementation
    config: dict[str, dict[str, Any]]  # the run's nested config as given, defaults filled in
    dataset: Dataset
    selected: dict[str, SelectedValue]  # dotted key -> value chosen by another experiment
    code: dict[str, Any]  # git_sha, git_dirty
    versions: dict[str, Any]  # python, torch, cuda, numpy
    device: str
    summary_version: int = field(default=SUMMARY_VERSION)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def write_summary(path: str | os.PathLike, summary: RunSummary) -> None:
    """Write summary.json atomically (a reader sees the old file or the whole new one)."""
    atomic_write_text(path, json.dumps(_finite(summary.to_dict()), indent=2) + "\n")


def read_summary(path: str | os.PathLike) -> RunSummary:
    """The summary in `path`, every field checked; SummaryError names the file and what is wrong with it."""
    name = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError as exc:
        raise SummaryError(f"{name} does not exist: the run has not finished (train it first)") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SummaryError(f"{name} is not a readable JSON file ({exc}); rerun the run to rewrite it") from exc
    if not isinstance(raw, dict):
        raise SummaryError(f"{name} holds a {type(raw).__name__}, not a run summary")
    version = raw.get("summary_version")
    if version != SUMMARY_VERSION:
        found = "no summary_version" if version is None else f"summary_version {version!r}"
        raise SummaryError(f"{name} has {found}, but this code reads summary_version {SUMMARY_VERSION}: it was "
                           "written by another version of cs336lm; retrain the run (bump defaults.code_version)")
    try:
        return _build(RunSummary, raw, "")
    except SummaryError as exc:
        raise SummaryError(f"{name}: {exc}") from None


def _build(klass: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise SummaryError(f"{where.rstrip('.') or 'the file'} must be an object, not {type(raw).__name__}")
    hints = typing.get_type_hints(klass)
    names = [f.name for f in dataclasses.fields(klass)]
    missing = [n for n in names if n not in raw]
    unknown = sorted(set(raw) - set(names))
    if missing or unknown:
        problems = [f"missing {', '.join(where + n for n in missing)}"] if missing else []
        problems += [f"unknown {', '.join(where + n for n in unknown)}"] if unknown else []
        raise SummaryError("; ".join(problems))
    return klass(**{n: _value(hints[n], raw[n], where + n) for n in names})


def _value(hint: Any, value: Any, where: str) -> Any:
    """`value` checked against the type annotation `hint` (scalars, unions with None, dicts, dataclasses)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _value(option, value, where)
            except SummaryError as exc:
                errors.append(str(exc))
        raise SummaryError(errors[0] if len(errors) == 1 else f"{where} = {value!r} has the wrong type")
    if origin is dict:
        if not isinstance(value, dict):
            raise SummaryError(f"{where} must be an object, not {type(value).__name__}")
        _, item = typing.get_args(hint)
        return {k: _value(item, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where + ".")
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise SummaryError(f"{where} = {value!r} must be {hint.__name__}, not {type(value).__name__}")
    return value


def _finite(value: Any) -> Any:
    # JSON has no NaN or Infinity: a non-finite number becomes null (the fields that may hold one allow None).
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
