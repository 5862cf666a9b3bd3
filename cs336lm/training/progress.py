"""Resume and preemption for one run: the undeclared `progress/` folder
(lock, checkpoint, partial metrics), what a resumed run restores, when checkpoints are due, SIGTERM/SIGUSR1, and
the finish that moves a run's results into its declared outputs without ever leaving a state that loses data.

The finish is ordered so that every interruption is either resumable from `progress/` or complete: training (and its
final validation) ends with a checkpoint marked finished; the outputs are written (each atomically) while
checkpoint and partial metrics stay; removing the checkpoint is the commit, after which the partial metrics go. A
rerun after an interruption anywhere (Snakemake deletes a failed job's declared outputs) writes them again from the
finished checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cs336lm.atomic import atomic_path
from cs336lm.config import ConfigError, RunConfig
from cs336lm.training.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from cs336lm.training.device import synchronize
from cs336lm.training.identity import trajectory_changes
from cs336lm.training.metrics import truncate_metrics
from cs336lm.training.run_lock import run_lock
from cs336lm.training.schedule import now
from cs336lm.training.summary import RunSummary, write_summary

log = logging.getLogger(__name__)

PROGRESS_CHECKPOINT = "checkpoint.pt"
PROGRESS_METRICS = "metrics.jsonl"
LOCK_FILE = "lock"

class Preempted(RuntimeError):
    """SIGTERM or SIGUSR1 arrived (Slurm's warning before a time limit or preemption); a checkpoint was written.

    Uncaught, it ends the Python process with exit status 1, which Snakemake's `retries` resubmits; the retry
    resumes from the checkpoint.
    """


@dataclass
class ProgressState:
    """What a resumed run needs beyond model, optimizer and RNG states, saved in the checkpoint's `extra`."""

    step: int = 0
    train_time_s: float = 0.0  # training only, summed over attempts; evaluation and checkpoints excluded
    eval_time_s: float = 0.0
    # The whole job's time, summed over attempts up to each one's last checkpoint, and its parts beyond training
    # and evaluation (cs336lm.training.summary.JobTimes).
    job_time_s: float = 0.0
    startup_s: float = 0.0
    checkpoint_time_s: float = 0.0
    first_step_s: float | None = None  # compilation included
    step_s: float | None = None  # the latest estimate of a step's time
    first_loss: float | None = None
    best_val_loss: float | None = None
    last_train_loss: float | None = None
    final_val_loss: float | None = None  # the finished model over the validation split (cs336lm.training.evaluation)
    final_val_tokens: int = 0
    # Sums over the steps since the last metrics line, so a line after a resume averages the same steps.
    loss_sum: Tensor | None = None
    grad_norm_sum: Tensor | None = None
    steps_in_sum: int = 0
    # Set when training has ended: a checkpoint that carries them is finished, and a rerun only scores it.
    status: str | None = None  # ok | unstable | diverged (cs336lm.training.divergence)
    stopped_early: str | None = None  # diverged | wall_clock
    divergence: str | None = None
    instability: str | None = None


class Progress:
    """The progress folder of one run; Snakemake never deletes it, so a failed or killed job resumes from it."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.checkpoint = self.directory / PROGRESS_CHECKPOINT
        self.metrics = self.directory / PROGRESS_METRICS
        self.lock_file = self.directory / LOCK_FILE

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the run's lock (cs336lm.training.run_lock) for the block; on leaving, drop the folder if nothing is
        left."""
        with run_lock(self.lock_file):
            yield
        with contextlib.suppress(OSError):
            self.directory.rmdir()  # only if empty: set-aside stale checkpoints stay

    def resume(self, cfg: RunConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
               data_rng: np.random.Generator, device: torch.device) -> ProgressState:
        """Restore model, optimizer, RNGs and loop state, and cut the partial metrics back to the checkpoint's step.

        A checkpoint of a different trajectory (another lr, seed, architecture, ...) is set aside as *.stale, not
        deleted, and the run starts over. Partial metrics without a checkpoint cannot be continued and are dropped.
        """
        if not self.checkpoint.exists():
            self.metrics.unlink(missing_ok=True)
            return ProgressState()
        ckpt = read_checkpoint(self.checkpoint)
        changed = _changed_keys(ckpt["config"], cfg)
        if changed:
            log.warning("progress checkpoint %s belongs to another configuration (%s); moving it aside and starting "
                        "over", self.checkpoint, changed)
            for path in (self.checkpoint, self.metrics):
                if path.exists():
                    os.replace(path, path.with_name(path.name + ".stale"))
            return ProgressState()
        step = load_checkpoint(self.checkpoint, model, optimizer)
        extra = dict(ckpt["extra"])
        data_rng.bit_generator.state = extra.pop("numpy_rng")
        torch.set_rng_state(extra.pop("torch_rng"))
        cuda_rng = extra.pop("cuda_rng", None)
        if cuda_rng is not None and device.type == "cuda":
            torch.cuda.set_rng_state(cuda_rng, device)
        state = ProgressState(step=step, **{f.name: extra[f.name] for f in fields(ProgressState)
                                            if f.name in extra and f.name != "step"})
        for name in ("loss_sum", "grad_norm_sum"):
            if getattr(state, name) is not None:
                setattr(state, name, getattr(state, name).to(device))
        truncate_metrics(self.metrics, step)
        done = f"; training had ended ({state.status}), so only its outputs remain" if state.status else ""
        log.info("resumed from %s at step %d (%.0fs of training so far)%s", self.checkpoint, step,
                 state.train_time_s, done)
        return state

    def save(self, cfg: RunConfig, model: nn.Module, optimizer: torch.optim.Optimizer, state: ProgressState,
             data_rng: np.random.Generator, device: torch.device) -> None:
        """Write the progress checkpoint (atomically: a kill mid-write leaves the previous one)."""
        extra: dict[str, Any] = {f.name: getattr(state, f.name) for f in fields(ProgressState) if f.name != "step"}
        for name in ("loss_sum", "grad_norm_sum"):
            if extra[name] is not None:
                extra[name] = extra[name].cpu()
        extra["numpy_rng"] = data_rng.bit_generator.state  # 128-bit ints, which weights_only loading accepts
        extra["torch_rng"] = torch.get_rng_state()
        if device.type == "cuda":
            extra["cuda_rng"] = torch.cuda.get_rng_state(device)
        save_checkpoint(model, optimizer, state.step, self.checkpoint, config=cfg.to_dict(), extra=extra)
        log.info("checkpoint at step %d written to %s", state.step, self.checkpoint)


def _changed_keys(saved_config: dict, cfg: RunConfig) -> str:
    """The trajectory-changing keys (cs336lm.training.identity) on which the checkpoint's config differs from cfg,
    in words ('' if none)."""
    try:
        saved = RunConfig.from_dict(saved_config) if saved_config else None
    except ConfigError as exc:
        return f"its config no longer reads: {exc}"
    if saved is None:
        return "it records no config"
    changed = trajectory_changes(saved, cfg)
    return ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in sorted(changed.items()))


class CheckpointTimer:
    """A checkpoint is due every `train.checkpoint_interval` steps or `train.checkpoint_minutes`, whichever
    comes first."""

    def __init__(self, cfg: RunConfig):
        self.interval, self.seconds = cfg.train.checkpoint_interval, cfg.train.checkpoint_minutes * 60
        self.last = time.perf_counter()

    def due(self, step: int) -> bool:
        return step % self.interval == 0 or time.perf_counter() - self.last >= self.seconds

    def done(self) -> None:
        self.last = time.perf_counter()


@contextlib.contextmanager
def preemption_signals() -> Iterator[list[int]]:
    """Collect SIGTERM/SIGUSR1 into a list the loop polls between steps, so a checkpoint is never half-made."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received  # signal handlers can only be installed from the main thread
        return

    def handler(signum: int, _frame: object) -> None:
        log.warning("received signal %d; writing a checkpoint after this step", signum)
        received.append(signum)

    wanted = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGUSR1", None)) if s is not None]
    previous = {s: signal.signal(s, handler) for s in wanted}
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@dataclass(frozen=True)
class Outputs:
    """A run's declared outputs (Snakemake deletes them when the job fails)."""

    model: Path
    metrics: Path
    summary: Path


def finish(progress: Progress, cfg: RunConfig, model: nn.Module, state: ProgressState,
           summary_of: Callable[[float], RunSummary], outputs: Outputs, device: torch.device) -> RunSummary:
    """Write the declared outputs from a finished run, then remove its progress files: checkpoint first (the
    commit), partial metrics after. Each step is atomic and safe to repeat. The summary, written last, is made by
    `summary_of(seconds spent writing the model and metrics)`, so it records that time too; it is returned."""
    synchronize(device)
    for path in (outputs.model, outputs.metrics, outputs.summary):
        path.parent.mkdir(parents=True, exist_ok=True)
    started = now()
    write_model(model, cfg, state, outputs.model)
    write_metrics(progress.metrics, outputs.metrics)
    summary = summary_of(now() - started)
    write_summary(outputs.summary, summary)
    discard_checkpoint(progress)
    discard_partial_metrics(progress)
    log.info("finished: status %s, %d steps, final validation loss %s over %s tokens; wrote %s", summary.status,
             summary.steps, summary.final_val_loss, f"{summary.final_val_tokens:,}", outputs.model.parent)
    return summary


def write_model(model: nn.Module, cfg: RunConfig, state: ProgressState, path: Path) -> None:
    # Weights only: the final model is for sampling, and optimizer moments would triple its size.
    save_checkpoint(model, None, state.step, path, config=cfg.to_dict(), extra={"status": state.status})


def write_metrics(partial: Path, path: Path) -> None:
    """Copy, not move: until the checkpoint is gone, the partial metrics are what a rerun continues."""
    with atomic_path(path) as tmp:
        if partial.exists():
            shutil.copyfile(partial, tmp)
        else:
            tmp.touch()


def discard_checkpoint(progress: Progress) -> None:
    progress.checkpoint.unlink(missing_ok=True)


def discard_partial_metrics(progress: Progress) -> None:
    progress.metrics.unlink(missing_ok=True)
