"""A run's summary.json as a typed contract: `RunSummary`, written by the trainer with
`write_summary` and read everywhere else only through `read_summary`, which checks every field and its type, so a
file from another version or a hand edit fails with the file and the field named instead of a KeyError later.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from cs336lm.atomic import atomic_write_text
from cs336lm.config import ConfigError, RunConfig
from cs336lm.training.divergence import STABLE, UNSTABLE, instability
from cs336lm.training.metrics import read_metrics

SUMMARY_VERSION = 2  # 2: status `unstable` and its `instability` (a version-1 `ok` may be unstable)


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
    status: str  # ok (stable) | unstable | diverged (cs336lm.training.divergence)
    stopped_early: str | None  # None | diverged | wall_clock
    divergence: str | None  # why the run counts as diverged, in words; None when it did not
    instability: str | None  # why a run that did not diverge counts as unstable, in words; None when stable
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

    @functools.cached_property
    def run_config(self) -> RunConfig:
        """`config` typed: the RunConfig the run trained with."""
        return RunConfig.from_dict(self.config)

    def config_value(self, key: str) -> Any:
        """One dotted key of run_config (`optim.lr_max`)."""
        section, _, name = key.partition(".")
        return getattr(getattr(self.run_config, section), name)

    @property
    def finished(self) -> bool:
        return finished(self)


class _Ending(typing.Protocol):
    status: str
    final_val_loss: float | None


def finished(run: _Ending) -> bool:
    """Trained without diverging to a finite final validation loss: a run whose loss a comparison may rank."""
    loss = run.final_val_loss
    return run.status == "ok" and loss is not None and math.isfinite(loss)


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
    if version == 1:
        raw = _from_version_1(raw, name)
    if raw.get("summary_version") != SUMMARY_VERSION:
        found = "no summary_version" if version is None else f"summary_version {version!r}"
        raise SummaryError(f"{name} has {found}, but this code reads summary_version {SUMMARY_VERSION}: it was "
                           "written by another version of cs336lm; retrain the run (bump defaults.code_version)")
    try:
        summary = _build(RunSummary, raw, "")
    except SummaryError as exc:
        raise SummaryError(f"{name}: {exc}") from None
    try:
        summary.run_config  # noqa: B018 - checks the config once, here, naming the file
    except ConfigError as exc:
        raise SummaryError(f"{name}: config: {exc}") from None
    return summary


def _from_version_1(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """A version-1 summary read as version 2: its `ok` was judged without the instability rule, so the rule is
    applied to the training losses of the metrics.jsonl beside it."""
    raw = {**raw, "summary_version": SUMMARY_VERSION, "instability": None}
    if raw.get("status") == STABLE:
        metrics = os.path.join(os.path.dirname(name), "metrics.jsonl")
        if not os.path.exists(metrics):
            raise SummaryError(f"{name} has summary_version 1, which did not judge instability, and no metrics.jsonl "
                               "beside it to judge from; retrain the run (bump defaults.code_version)")
        raw["instability"] = instability([r["train_loss"] for r in read_metrics(metrics)])
        raw["status"] = UNSTABLE if raw["instability"] else STABLE
    return raw


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
