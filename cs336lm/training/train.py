"""The training loop (handout §5.3, §7): seeded batches from memmapped token files, one optimizer step each
(cs336lm.training.step) at the cosine schedule's rate (over steps, or over training time under a wall-clock budget),
evaluation every N tokens on a fixed validation sample, JSONL metrics, and the finished run scored on the whole
validation split. The implementation each fast path uses comes from cs336lm.training.implementation, resume and the
finish from cs336lm.training.progress, and the divergence rule from cs336lm.training.divergence.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cs336lm.atomic import check_replaceable
from cs336lm.config import RunConfig
from cs336lm.lm.data import get_batch
from cs336lm.lm.model import TransformerLM, count_parameters, flops_per_token
from cs336lm.tokenization.token_files import check_tokens, open_tokens
from cs336lm.training import implementation
from cs336lm.training.device import (
    MEMORY_ERRORS,
    code_version,
    device_name,
    is_out_of_memory,
    peak_flops,
    resolve_device,
    synchronize,
    versions,
)
from cs336lm.training.divergence import DIVERGED, STABLE, UNSTABLE, DivergenceRule, unigram_entropy
from cs336lm.training.evaluation import sample_loss, split_loss, split_tokens, validation_sample
from cs336lm.training.metrics import MetricsLogger, read_metrics
from cs336lm.training.progress import (
    CheckpointTimer,
    Outputs,
    Preempted,
    Progress,
    ProgressState,
    finish,
    preemption_signals,
)
from cs336lm.training.schedule import JobBudget, JobClock, LrSchedule, StepTimer, TrainingClock, now
from cs336lm.training.step import BatchTooLargeError, TrainStep
from cs336lm.training.summary import Dataset, Implementation, JobTimes, Parameters, RunSummary, SelectedValue

log = logging.getLogger(__name__)


def with_tokenizer_vocabulary(cfg: RunConfig, vocab_path: str | os.PathLike) -> RunConfig:
    """The run's config with model.vocab_size set to the vocabulary of the tokenizer it trains on (the ids of its
    vocab.json, special tokens included). BPE stops short of the size asked for when no pair of tokens is left to
    merge, and a model with the asked-for size would carry output ids that no training token has. The workflow
    names and deduplicates runs by the size asked for, before the tokenizer exists; this is applied as the job
    starts, so every attempt of a run (and its resume) sees the same config."""
    try:
        with open(vocab_path, encoding="utf-8") as f:
            ids = json.load(f).values()
        size = max(ids) + 1
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{os.fspath(vocab_path)}: not a readable vocab.json ({exc})") from exc
    if size != cfg.model.vocab_size:
        log.warning("model.vocab_size %d -> %d: the tokenizer %s has %d ids", cfg.model.vocab_size, size,
                    os.fspath(vocab_path), size)
    return RunConfig.from_flat({"model.vocab_size": size}, base=cfg)


def train(
    cfg: RunConfig,
    train_tokens: str | Path,
    valid_tokens: str | Path,
    *,
    model_path: str | Path,
    metrics_path: str | Path,
    summary_path: str | Path,
    progress_dir: str | Path | None = None,
    provenance: Mapping[str, Any] | None = None,
    wandb_project: str | None = None,
    job_started: float | None = None,
) -> RunSummary:
    """Train (or resume) one run and write model.pt, metrics.jsonl and summary.json; returns the summary.

    Progress (lock, checkpoint, partial metrics) lives in `progress_dir` (default: `progress/` beside model_path),
    which Snakemake does not delete on failure; the declared outputs are written at the end (cs336lm.training.progress).
    `provenance` = {"dataset": {"name", "source"}, "selected": {dotted key: {"value", "source"}}} is recorded in
    the summary as given. A diverged run returns normally with status "diverged"; SIGTERM/SIGUSR1 raise
    `Preempted` after a checkpoint; a second trainer on the same run raises RunLockedError. `job_started` is when
    the job began (a cs336lm.training.schedule.now() reading taken first thing; default: now), so a wall-clock
    budget counts the job's start-up too.
    """
    job_started = now() if job_started is None else job_started
    outputs = Outputs(Path(model_path), Path(metrics_path), Path(summary_path))
    for path in (outputs.model, outputs.metrics, outputs.summary):
        check_replaceable(path)  # a device or FIFO as an output is refused now, not after the training
    progress = Progress(progress_dir if progress_dir is not None else outputs.model.parent / "progress")
    dataset, selected = _read_provenance(provenance or {})
    device = resolve_device(cfg.train.device)
    resolved = implementation.resolve(cfg, device.type)  # what runs; `cfg` as given is what identifies the run
    train_data = _open_checked(train_tokens, cfg)
    valid_data = _open_checked(valid_tokens, cfg)

    with progress.locked():
        torch.manual_seed(cfg.train.seed)
        model = TransformerLM(resolved.model).to(device)
        step_fn = TrainStep(model, resolved, device)
        data_rng = np.random.default_rng(cfg.train.seed)
        state = progress.resume(cfg, model, step_fn.optimizer, data_rng, device)
        rule = DivergenceRule(cfg.train.divergence_factor, unigram_entropy(train_data, cfg.model.vocab_size))
        paths = implementation.describe(cfg, device.type)
        log.info("training %s parameters on %s: %d steps of %d × %d tokens%s; implementation %s",
                 f"{count_parameters(model)['total']:,}", device_name(device), cfg.num_iterations,
                 cfg.train.batch_size, cfg.model.context_length,
                 f" within {cfg.train.wall_clock_budget_s:g} s" if cfg.train.wall_clock_budget_s else "",
                 ", ".join(f"{k}={v}" for k, v in paths.items()))
        job = JobClock(job_started, state.job_time_s)
        if state.status is None:
            _Loop(cfg, model, step_fn, state, progress, rule, device, data_rng, train_data, valid_data,
                  wandb_project, outputs.model.parent.name, job).run()
        return finish(progress, cfg, model, state,
                      lambda write_s: _summary(cfg, state, rule, model, paths, device, dataset, selected,
                                               _job_times(cfg, state, write_s, job.elapsed())),
                      outputs, device)


class _Loop:
    """Training steps from the state's step to the end (token budget, wall clock or divergence), with metrics
    lines, evaluations and progress checkpoints; ends by checkpointing the finished state."""

    def __init__(self, cfg: RunConfig, model: nn.Module, step_fn: TrainStep, state: ProgressState,
                 progress: Progress, rule: DivergenceRule, device: torch.device, data_rng: np.random.Generator,
                 train_data: np.ndarray, valid_data: np.ndarray, wandb_project: str | None, run_name: str,
                 job: JobClock):
        self.cfg, self.model, self.step_fn, self.state, self.progress = cfg, model, step_fn, state, progress
        self.rule, self.device, self.data_rng, self.train_data = rule, device, data_rng, train_data
        self.valid_data, self.validation = valid_data, validation_sample(valid_data, cfg, device)
        self.schedule, self.step_timer, self.checkpoints = LrSchedule(cfg), StepTimer(), CheckpointTimer(cfg)
        self.clock, self.job = TrainingClock(state.train_time_s), job
        final_tokens = split_tokens(len(valid_data), cfg.model.context_length, cfg.train.final_eval_tokens)
        self.budget = JobBudget(cfg.train.wall_clock_budget_s, final_tokens)
        self.metrics = MetricsLogger(progress.metrics, wandb_project=wandb_project, run_name=run_name,
                                     config=cfg.to_dict())
        self.last_line = (state.step, state.train_time_s)  # for each line's tokens_per_s

    def run(self) -> None:
        t, m, state = self.cfg.train, self.cfg.model, self.state
        budget, tokens_per_step = t.wall_clock_budget_s, self.cfg.tokens_per_step
        with preemption_signals() as signals, self.metrics:
            state.startup_s += self.job.elapsed() - state.job_time_s  # this attempt's, up to its first step
            if budget:
                self._measure_evaluation()
            self.clock.start()
            self.loop_started = (self.job.elapsed(), self.clock.elapsed())
            while state.step < self.cfg.num_iterations and not (budget and self._out_of_time()):
                if signals:
                    self._checkpoint()
                    raise Preempted(f"received signal {signals[0]} at step {state.step}; checkpoint "
                                    f"{self.progress.checkpoint} written, rerun to resume")
                x, y = get_batch(self.train_data, t.batch_size, m.context_length, self.device, rng=self.data_rng)
                lr = self.schedule.lr(state.step + 1, self._time_fraction() if budget else 0.0)
                try:
                    loss, grad_norm = self.step_fn(x, y, lr)
                except MEMORY_ERRORS as exc:
                    if is_out_of_memory(exc):
                        raise BatchTooLargeError(_batch_too_large(exc, self.cfg, self.device)) from exc
                    raise
                state.step += 1
                state.loss_sum = loss if state.loss_sum is None else state.loss_sum + loss
                state.grad_norm_sum = grad_norm if state.grad_norm_sum is None else state.grad_norm_sum + grad_norm
                state.steps_in_sum += 1

                out_of_time = budget > 0 and self._next_step_crosses()
                tokens = state.step * tokens_per_step
                last = state.step == self.cfg.num_iterations or out_of_time
                evaluate = last or tokens // t.eval_every_tokens > (tokens - tokens_per_step) // t.eval_every_tokens
                if evaluate or state.step == 1 or state.step % t.log_interval == 0:
                    self._metrics_line(lr, evaluate, last)
                    if state.status == "diverged":
                        break
                if out_of_time:
                    log.info("stopping at step %d: another step would leave too little of the wall-clock budget "
                             "of %gs for the final validation and the outputs", state.step, budget)
                    break
                if state.step < self.cfg.num_iterations and self.checkpoints.due(state.step):
                    self._checkpoint()
            self.clock.stop()
            state.train_time_s = self.clock.elapsed()
            if state.status is None and state.step < self.cfg.num_iterations:
                state.stopped_early = "wall_clock"  # the only way out short of the token budget but divergence
                if state.step == 0:  # an untrained model's loss is no result: the budget is too small
                    raise ValueError(f"train.wall_clock_budget_s = {budget:g} s leaves no time for one training "
                                     f"step after start-up ({state.startup_s:.3g} s) with the final validation and "
                                     "the outputs still to fit: raise the budget")
            if state.status is None:
                if not state.final_val_tokens:  # a resumed run found its time already spent: no last line
                    self._final_validation()
                state.divergence = self.rule.at_end(state.last_train_loss)
                if not state.divergence:  # the whole curve, over every attempt, from the partial metrics
                    state.instability = self.rule.unstable([r["train_loss"] for r in read_metrics(
                        self.progress.metrics)])
                state.status = DIVERGED if state.divergence else UNSTABLE if state.instability else STABLE
            self._checkpoint()  # the finished state: a rerun from here only writes the outputs

    def _measure_evaluation(self) -> None:
        """The evaluation speed, which sizes the time kept for the final validation: the fixed validation sample
        twice, the first time to warm up (and compile), the second one timed."""
        for _ in range(2):
            with self.clock.paused() as paused:
                sample_loss(self.model, self.step_fn.loss, self.validation)
            self.state.eval_time_s += paused.seconds
        self.budget.observe_eval(sum(y.numel() for _, y in self.validation), paused.seconds)

    def _out_of_time(self) -> bool:
        """Whether the next step would leave too little time for the final validation and the outputs."""
        return self.budget.training_ends(self.job.elapsed(), self.step_timer.seconds_per_step or 0.0)

    def _next_step_crosses(self) -> bool:
        # Close to the end, wait for the queued steps each time, so the clocks count work done rather than work
        # launched, and time every step; elsewhere the estimate from the metrics lines will do.
        seconds_per_step = self.step_timer.seconds_per_step
        left = self.budget.budget_s - self.job.elapsed() - self.budget.reserve_s()
        if seconds_per_step and left < (self.cfg.train.log_interval + 2) * seconds_per_step:
            synchronize(self.device)
            self.step_timer.observe(self.state.step, self.clock.elapsed(), cautious=True)
        return self._out_of_time()

    def _time_fraction(self) -> float:
        """The fraction of the budget's training time that will have been spent when the next step ends."""
        step_s = self.step_timer.seconds_per_step or 0.0
        job_s, train_s = self.job.elapsed(), self.clock.elapsed()
        loop_job, loop_train = job_s - self.loop_started[0], train_s - self.loop_started[1]
        overhead = max(loop_job - loop_train, 0.0) / loop_train if loop_train > 0 else 0.0
        return self.budget.time_fraction(train_s + step_s, overhead, job_s + step_s)

    def _metrics_line(self, lr: float, evaluate: bool, last: bool) -> None:
        """Log the steps since the last line; evaluate on the fixed sample, or at the last step on the whole
        validation split (the run's final validation loss, so its curve ends on the number its summary gives)."""
        state = self.state
        train_loss = state.loss_sum.item() / state.steps_in_sum  # the one host sync per metrics line
        grad_norm = state.grad_norm_sum.item() / state.steps_in_sum
        train_time = self.clock.elapsed()
        self.step_timer.observe(state.step, train_time)
        state.step_s = self.step_timer.seconds_per_step
        if state.first_step_s is None:
            state.first_step_s = state.step_s if state.step == 1 else None
        record = {
            "step": state.step,
            "tokens": state.step * self.cfg.tokens_per_step,
            "elapsed_s": train_time,
            "job_s": self.job.elapsed(),
            "lr": lr,
            "train_loss": train_loss,
            "grad_norm": grad_norm,
            "tokens_per_s": (state.step - self.last_line[0]) * self.cfg.tokens_per_step
            / max(train_time - self.last_line[1], 1e-9),
        }
        self.last_line = (state.step, train_time)
        state.loss_sum, state.grad_norm_sum, state.steps_in_sum = None, None, 0
        state.last_train_loss = train_loss
        if state.first_loss is None:
            state.first_loss = train_loss
        state.divergence = self.rule.during(train_loss, state.first_loss, state.step)
        if evaluate and state.divergence is None:
            if last:
                val_loss = self._final_validation()
            else:
                with self.clock.paused() as paused:
                    val_loss = sample_loss(self.model, self.step_fn.loss, self.validation)
                state.eval_time_s += paused.seconds
                self.budget.observe_eval(sum(y.numel() for _, y in self.validation), paused.seconds)
            state.best_val_loss = min(val_loss, state.best_val_loss or math.inf)
            record["val_loss"], record["job_s"] = val_loss, self.job.elapsed()
        self.metrics.log(record)
        _log_line(record, self.cfg, self.state.step, self.step_timer.seconds_per_step)
        if state.divergence:
            log.warning("diverged: %s", state.divergence)
            state.status, state.stopped_early = "diverged", "diverged"

    def _final_validation(self) -> float:
        with self.clock.paused() as paused:
            loss, tokens = split_loss(self.model, self.step_fn.loss, self.valid_data, self.cfg, self.device)
        self.state.eval_time_s += paused.seconds
        self.state.final_val_loss, self.state.final_val_tokens = (loss if math.isfinite(loss) else None), tokens
        log.info("final validation loss %.4f over %s tokens (%.1fs)", loss, f"{tokens:,}", paused.seconds)
        return loss

    def _checkpoint(self) -> None:
        synchronize(self.device)  # the queued steps are training time, not checkpoint time
        with self.clock.paused() as paused:
            self.state.train_time_s = self.clock.elapsed()
            self.state.job_time_s = self.job.elapsed()
            self.progress.save(self.cfg, self.model, self.step_fn.optimizer, self.state, self.data_rng, self.device)
        self.state.checkpoint_time_s += paused.seconds
        self.budget.observe_checkpoint(paused.seconds)
        self.checkpoints.done()


def _open_checked(path: str | Path, cfg: RunConfig) -> np.ndarray:
    data = open_tokens(path)
    try:
        check_tokens(data, cfg.model.context_length, cfg.model.vocab_size)
    except ValueError as exc:
        raise ValueError(f"token file {os.fspath(path)}: {exc}") from exc
    return data


def _read_provenance(provenance: Mapping[str, Any]) -> tuple[Dataset, dict[str, SelectedValue]]:
    unknown = set(provenance) - {"dataset", "selected"}
    if unknown:
        raise ValueError(f"provenance has unknown entries {sorted(unknown)}; expected dataset and selected")
    dataset = provenance.get("dataset") or {}
    try:
        selected = {key: SelectedValue(value=v["value"], source=str(v["source"]))
                    for key, v in (provenance.get("selected") or {}).items()}
    except (KeyError, TypeError) as exc:
        raise ValueError(f"provenance['selected'] must map dotted keys to {{'value', 'source'}}: {exc!r}") from exc
    return Dataset(name=dataset.get("name"), source=dataset.get("source")), selected


def _batch_too_large(exc: BaseException, cfg: RunConfig, device: torch.device) -> str:
    b, first_line = cfg.train.batch_size, (str(exc).splitlines() or [type(exc).__name__])[0]
    return (f"a training batch of {b} × {cfg.model.context_length} tokens does not fit in memory on {device} "
            f"({first_line}); set train.batch_size to {max(b // 2, 1)} or less (the token budget keeps the tokens "
            "trained on the same) or shorten model.context_length")


def _log_line(record: dict[str, Any], cfg: RunConfig, step: int, seconds_per_step: float | None) -> None:
    eta = (cfg.num_iterations - step) * (seconds_per_step or 0.0)
    if cfg.train.wall_clock_budget_s:
        eta = min(eta, max(cfg.train.wall_clock_budget_s - record["elapsed_s"], 0.0))
    val = f" | val {record['val_loss']:.4f}" if "val_loss" in record else ""
    log.info("step %d/%d | loss %.4f%s | lr %.3e | %s tok/s | trained %s | ETA %s", step, cfg.num_iterations,
             record["train_loss"], val, record["lr"], f"{record['tokens_per_s']:,.0f}",
             _duration(record["elapsed_s"]), _duration(eta))


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m{rest % 60:02d}s" if h else f"{rest // 60}m{rest % 60:02d}s"


def _job_times(cfg: RunConfig, state: ProgressState, write_s: float, total_s: float) -> JobTimes:
    compile_s = max(state.first_step_s - state.step_s, 0.0) if state.first_step_s and state.step_s else 0.0
    return JobTimes(budget_s=cfg.train.wall_clock_budget_s or None, startup_s=state.startup_s, compile_s=compile_s,
                    train_s=state.train_time_s, eval_s=state.eval_time_s, checkpoint_s=state.checkpoint_time_s,
                    write_s=write_s, total_s=total_s)


def _summary(cfg: RunConfig, state: ProgressState, rule: DivergenceRule, model: nn.Module, paths: dict[str, Any],
             device: torch.device, dataset: Dataset, selected: dict[str, SelectedValue], job: JobTimes
             ) -> RunSummary:
    tokens = state.step * cfg.tokens_per_step
    tokens_per_s = tokens / state.train_time_s if state.train_time_s > 0 else None
    fpt = flops_per_token(cfg.model)
    peak = peak_flops(device, paths["dtype"])
    return RunSummary(
        status=state.status,
        stopped_early=state.stopped_early,
        divergence=state.divergence,
        instability=state.instability,
        final_val_loss=state.final_val_loss,
        final_val_tokens=state.final_val_tokens,
        best_val_loss=state.best_val_loss,
        final_train_loss=state.last_train_loss if state.last_train_loss is not None
        and math.isfinite(state.last_train_loss) else None,
        no_learning_loss=rule.no_learning_loss,
        steps=state.step,
        num_iterations=cfg.num_iterations,
        tokens=tokens,
        wall_time_s=state.train_time_s,
        eval_time_s=state.eval_time_s,
        tokens_per_s=tokens_per_s,
        job=job,
        parameters=Parameters(**count_parameters(model)),
        flops_per_token=fpt,
        mfu=fpt * tokens_per_s / peak if peak and tokens_per_s else None,
        implementation=Implementation(**paths),
        config=cfg.to_dict(),
        dataset=dataset,
        selected=selected,
        code=code_version(),
        versions=versions(),
        device=device_name(device),
    )
