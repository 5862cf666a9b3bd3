"""The training loop (handout §5.3, §7): seeded batches from memmapped token files, AdamW with a cosine schedule
and clipping, periodic evaluation on a fixed validation sample, JSONL metrics, resumable progress checkpoints,
preemption by SIGTERM/SIGUSR1, divergence detection, a wall-clock budget, and the config-selected fast paths
(SDPA attention, torch.compile, bf16 autocast, foreach/fused AdamW) of DESIGN.md §6.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cs336lm.atomic import atomic_write_text, check_replaceable, move_into_place
from cs336lm.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from cs336lm.config import RunConfig
from cs336lm.data import get_batch
from cs336lm.device import autocast, code_version, device_name, peak_flops, resolve_device, versions
from cs336lm.losses import cross_entropy
from cs336lm.metrics import MetricsLogger, truncate_metrics
from cs336lm.model import TransformerLM, count_parameters, flops_per_token
from cs336lm.optim import AdamW, clip_grad_norm, global_grad_norm, lr_cosine_schedule
from cs336lm.tokenization.token_files import check_tokens, open_tokens

log = logging.getLogger(__name__)

PROGRESS_CHECKPOINT = "checkpoint.pt"
PROGRESS_METRICS = "metrics.jsonl"
VALIDATION_SEED = 20250401  # one validation sample for every run, whatever its training seed

# Config keys that may differ between a progress checkpoint and the run resuming it: they change speed, logging
# or where the run stops, not the trajectory (SDPA and reference attention agree to float tolerance).
RESUMABLE_CHANGES = {
    "train.device", "train.compile", "train.log_interval", "train.eval_interval", "train.checkpoint_interval",
    "train.checkpoint_minutes", "train.wall_clock_budget_s", "train.divergence_factor", "model.attention_backend",
}


class Preempted(RuntimeError):
    """SIGTERM or SIGUSR1 arrived (Slurm's warning before a time limit or preemption); a checkpoint was written.

    Uncaught, it ends the Python process with exit status 1, which Snakemake's `retries` resubmits; the retry
    resumes from the checkpoint.
    """


class BatchTooLargeError(RuntimeError):
    """One training step did not fit in device memory."""


class TrainStep:
    """One optimizer step: forward and loss (under autocast, optionally compiled), backward, clipping, AdamW.

    Returns the loss and the pre-clip gradient norm as device tensors, so the loop syncs with the device only
    when it logs. Shared with bench/bench_train_step.py so the benchmark times exactly what training runs.
    """

    def __init__(self, model: nn.Module, cfg: RunConfig, device: torch.device):
        self.model, self.device, self.dtype = model, device, cfg.train.dtype
        self.grad_clip = cfg.optim.grad_clip
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.params, cfg, device)

        def loss_of(x: Tensor, y: Tensor) -> Tensor:
            return cross_entropy(model(x), y)

        # Compiling the loss with the model lets inductor fuse the logits' log-sum-exp into few kernels; the
        # module itself stays uncompiled, so checkpoints keep plain parameter names.
        self.loss_of = torch.compile(loss_of) if cfg.train.compile else loss_of

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        with autocast(self.device, self.dtype):
            return self.loss_of(x, y)

    def __call__(self, x: Tensor, y: Tensor, lr: float) -> tuple[Tensor, Tensor]:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss = self.loss(x, y)
        loss.backward()
        # grad_clip 0 turns clipping off; the norm is logged either way.
        with torch.no_grad():
            grad_norm = (clip_grad_norm(self.params, self.grad_clip) if self.grad_clip > 0
                         else global_grad_norm(self.params))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach(), grad_norm


def build_optimizer(params: list[nn.Parameter], cfg: RunConfig, device: torch.device) -> torch.optim.Optimizer:
    """reference: our AdamW, one parameter at a time; foreach: our AdamW on multi-tensor kernels; fused: torch's."""
    o = cfg.optim
    kwargs = dict(lr=o.lr_max, betas=(o.beta1, o.beta2), eps=o.eps, weight_decay=o.weight_decay)
    if o.implementation == "fused":
        # torch folds eps inside the bias correction and decays before the update; equal to ours to ~1e-6.
        return torch.optim.AdamW(params, fused=True, **kwargs)
    return AdamW(params, foreach=o.implementation == "foreach", **kwargs)


@dataclass
class _Progress:
    """What a resumed run needs beyond model and optimizer state, saved in the checkpoint's `extra`."""

    step: int = 0
    elapsed_s: float = 0.0
    first_loss: float | None = None
    best_val_loss: float | None = None
    last_val_loss: float | None = None
    last_train_loss: float | None = None
    # Sums over the steps since the last metrics line, so a line after a resume averages the same steps.
    loss_sum: Tensor | None = None
    grad_norm_sum: Tensor | None = None
    steps_in_sum: int = 0


def train(
    cfg: RunConfig,
    train_tokens: str | Path,
    valid_tokens: str | Path,
    *,
    model_path: str | Path,
    metrics_path: str | Path,
    summary_path: str | Path,
    progress_dir: str | Path | None = None,
    wandb_project: str | None = None,
) -> dict[str, Any]:
    """Train (or resume) one run and write model.pt, metrics.jsonl and summary.json; returns the summary.

    Partial metrics and the checkpoint live in `progress_dir` (default: `progress/` beside model_path), which
    Snakemake does not delete on failure; the finished files are renamed into the declared paths at the end.
    A diverged run returns normally with status "diverged". SIGTERM/SIGUSR1 raise `Preempted` after a checkpoint.
    """
    model_path, metrics_path, summary_path = Path(model_path), Path(metrics_path), Path(summary_path)
    for path in (model_path, metrics_path, summary_path):
        check_replaceable(path)  # a device or FIFO as an output is refused now, not after the training
    progress_dir = Path(progress_dir) if progress_dir is not None else model_path.parent / "progress"
    progress_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, partial_metrics = progress_dir / PROGRESS_CHECKPOINT, progress_dir / PROGRESS_METRICS
    t, m = cfg.train, cfg.model
    num_iterations = cfg.num_iterations

    device = resolve_device(t.device)
    train_data, valid_data = open_tokens(train_tokens), open_tokens(valid_tokens)
    for path, data in ((train_tokens, train_data), (valid_tokens, valid_data)):
        try:
            check_tokens(data, m.context_length, m.vocab_size)
        except ValueError as exc:
            raise ValueError(f"token file {os.fspath(path)}: {exc}") from exc

    torch.manual_seed(t.seed)
    model = TransformerLM(m).to(device)
    step_fn = TrainStep(model, cfg, device)
    data_rng = np.random.default_rng(t.seed)
    validation = _validation_sample(valid_data, cfg, device)
    state = _Progress()
    if ckpt_path.exists():
        state = _resume(ckpt_path, partial_metrics, cfg, model, step_fn.optimizer, data_rng, device)
    elif partial_metrics.exists():
        partial_metrics.unlink()  # metrics without a checkpoint cannot be continued

    params = count_parameters(model)
    fpt = flops_per_token(m)
    log.info("training %s parameters (%s non-embedding) on %s for %d steps of %d × %d tokens (%s, compile=%s, "
             "attention=%s, optimizer=%s)", f"{params['total']:,}", f"{params['non_embedding']:,}",
             device_name(device), num_iterations, t.batch_size, m.context_length, t.dtype, t.compile,
             m.attention_backend, cfg.optim.implementation)

    metrics = MetricsLogger(partial_metrics, wandb_project=wandb_project, run_name=model_path.parent.name,
                            config=cfg.to_dict())

    def checkpoint(elapsed: float) -> None:
        save_checkpoint(model, step_fn.optimizer, state.step, ckpt_path, config=cfg.to_dict(),
                        extra=_extra(state, elapsed, data_rng, device))
        log.info("checkpoint at step %d written to %s", state.step, ckpt_path)

    status, stopped_early = "ok", None
    start_step, wall_start = state.step, time.perf_counter()
    last_log_time, last_log_step, last_checkpoint = wall_start, state.step, wall_start

    def elapsed() -> float:  # training wall clock, continued across resumes
        return state.elapsed_s + time.perf_counter() - wall_start

    with _preemption_signals() as signals, metrics:
        while state.step < num_iterations:
            if signals:
                checkpoint(elapsed())
                raise Preempted(f"received signal {signals[0]} at step {state.step}; checkpoint {ckpt_path} "
                                "written, rerun to resume")
            x, y = get_batch(train_data, t.batch_size, m.context_length, device, rng=data_rng)
            lr = lr_cosine_schedule(state.step + 1, cfg.optim.lr_max, cfg.optim.lr_min, cfg.warmup_iters,
                                    num_iterations)
            try:
                loss, grad_norm = step_fn(x, y, lr)
            except RuntimeError as exc:  # torch.OutOfMemoryError is one too
                if _is_out_of_memory(exc):
                    raise BatchTooLargeError(_batch_too_large(exc, cfg, device)) from exc
                raise
            state.step += 1
            state.loss_sum = loss if state.loss_sum is None else state.loss_sum + loss
            state.grad_norm_sum = grad_norm if state.grad_norm_sum is None else state.grad_norm_sum + grad_norm
            state.steps_in_sum += 1

            out_of_time = 0 < t.wall_clock_budget_s <= elapsed()
            evaluate_now = state.step == num_iterations or out_of_time or state.step % t.eval_interval == 0
            if evaluate_now or state.step == 1 or state.step % t.log_interval == 0:
                train_loss = state.loss_sum.item() / state.steps_in_sum  # the one host sync per metrics line
                record = {
                    "step": state.step,
                    "tokens": state.step * cfg.tokens_per_step,
                    "elapsed_s": 0.0,
                    "lr": lr,
                    "train_loss": train_loss,
                    "grad_norm": state.grad_norm_sum.item() / state.steps_in_sum,
                    "tokens_per_s": (state.step - last_log_step) * cfg.tokens_per_step
                    / (time.perf_counter() - last_log_time),
                }
                state.loss_sum, state.grad_norm_sum, state.steps_in_sum = None, None, 0
                state.last_train_loss = train_loss
                if state.first_loss is None:
                    state.first_loss = train_loss
                diverged = not math.isfinite(train_loss) or train_loss > t.divergence_factor * state.first_loss
                if evaluate_now and not diverged:
                    state.last_val_loss = evaluate(step_fn, validation)
                    state.best_val_loss = min(state.last_val_loss, state.best_val_loss or math.inf)
                    record["val_loss"] = state.last_val_loss
                record["elapsed_s"] = elapsed()
                metrics.log(record)
                _log_line(record, num_iterations, (time.perf_counter() - wall_start) / (state.step - start_step))
                last_log_time, last_log_step = time.perf_counter(), state.step
                if diverged:
                    log.warning("loss %.4g at step %d is not finite or above %g × its first value %.4g: diverged",
                                train_loss, state.step, t.divergence_factor, state.first_loss)
                    status, stopped_early = "diverged", "diverged"
                    break
            if out_of_time and state.step < num_iterations:
                log.info("wall-clock budget of %gs reached at step %d", t.wall_clock_budget_s, state.step)
                stopped_early = "wall_clock"
                break
            minutes = (time.perf_counter() - last_checkpoint) / 60
            if state.step < num_iterations and (state.step % t.checkpoint_interval == 0
                                                or minutes >= t.checkpoint_minutes):
                checkpoint(elapsed())
                last_checkpoint = time.perf_counter()
        state.elapsed_s = elapsed()

    summary = _summary(cfg, state, status, stopped_early, params, fpt, device, train_tokens, valid_tokens)
    _finish(model, cfg, state, summary, partial_metrics, ckpt_path,
            model_path, metrics_path, summary_path)
    return summary


@torch.no_grad()
def evaluate(step_fn: TrainStep, batches: list[tuple[Tensor, Tensor]]) -> float:
    """Mean loss over the fixed validation batches, in eval mode and without gradients."""
    step_fn.model.eval()
    total = sum(step_fn.loss(x, y) for x, y in batches)
    step_fn.model.train()
    return float(total) / len(batches)


def _validation_sample(valid_data: np.ndarray, cfg: RunConfig, device: torch.device) -> list[tuple[Tensor, Tensor]]:
    # A fixed seed and batch size make every run, whatever its training batch size, score the same windows.
    rng = np.random.default_rng(VALIDATION_SEED)
    return [get_batch(valid_data, cfg.train.eval_batch_size, cfg.model.context_length, device, rng=rng)
            for _ in range(cfg.train.eval_batches)]


def _extra(state: _Progress, elapsed_s: float, data_rng: np.random.Generator, device: torch.device) -> dict[str, Any]:
    extra = {k: v for k, v in vars(state).items() if k != "step"}
    extra["elapsed_s"] = elapsed_s
    extra["loss_sum"] = None if state.loss_sum is None else state.loss_sum.cpu()
    extra["grad_norm_sum"] = None if state.grad_norm_sum is None else state.grad_norm_sum.cpu()
    extra["numpy_rng"] = data_rng.bit_generator.state  # 128-bit ints, which weights_only loading accepts
    extra["torch_rng"] = torch.get_rng_state()
    if device.type == "cuda":
        extra["cuda_rng"] = torch.cuda.get_rng_state(device)
    return extra


def _resume(ckpt_path: Path, partial_metrics: Path, cfg: RunConfig, model: nn.Module,
            optimizer: torch.optim.Optimizer, data_rng: np.random.Generator, device: torch.device) -> _Progress:
    """Restore model, optimizer, RNGs and loop state, and cut the partial metrics back to the checkpoint's step.

    A checkpoint of a different trajectory (another lr, seed, architecture, ...) is set aside as *.stale, not
    deleted, and the run starts over.
    """
    ckpt = read_checkpoint(ckpt_path)
    saved = RunConfig.from_dict(ckpt["config"]).to_flat() if ckpt["config"] else {}
    changed = sorted(k for k, v in cfg.to_flat().items() if saved.get(k) != v and k not in RESUMABLE_CHANGES)
    if changed:
        log.warning("progress checkpoint %s belongs to another configuration (%s); moving it aside and starting over",
                    ckpt_path, ", ".join(f"{k}: {saved.get(k)!r} -> {cfg.to_flat()[k]!r}" for k in changed))
        for path in (ckpt_path, partial_metrics):
            if path.exists():
                os.replace(path, path.with_name(path.name + ".stale"))
        return _Progress()
    step = load_checkpoint(ckpt_path, model, optimizer)
    extra = ckpt["extra"]
    data_rng.bit_generator.state = extra.pop("numpy_rng")
    torch.set_rng_state(extra.pop("torch_rng"))
    cuda_rng = extra.pop("cuda_rng", None)
    if cuda_rng is not None and device.type == "cuda":
        torch.cuda.set_rng_state(cuda_rng, device)
    state = _Progress(step=step, **extra)
    for name in ("loss_sum", "grad_norm_sum"):
        if getattr(state, name) is not None:
            setattr(state, name, getattr(state, name).to(device))
    truncate_metrics(partial_metrics, step)
    log.info("resumed from %s at step %d (%.0fs of training so far)", ckpt_path, step, state.elapsed_s)
    return state


@contextlib.contextmanager
def _preemption_signals():
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


def _is_out_of_memory(exc: RuntimeError) -> bool:
    # CUDA raises torch.OutOfMemoryError; the CPU and MPS allocators raise plain RuntimeErrors.
    return isinstance(exc, torch.OutOfMemoryError) or any(
        s in str(exc) for s in ("can't allocate memory", "out of memory", "MPS backend out of memory"))


def _batch_too_large(exc: RuntimeError, cfg: RunConfig, device: torch.device) -> str:
    b, first_line = cfg.train.batch_size, (str(exc).splitlines() or [type(exc).__name__])[0]
    return (f"a training batch of {b} × {cfg.model.context_length} tokens does not fit in memory on {device} "
            f"({first_line}); set train.batch_size to {max(b // 2, 1)} or less (the token budget keeps the tokens "
            "trained on the same) or shorten model.context_length")


def _log_line(record: dict[str, Any], num_iterations: int, seconds_per_step: float) -> None:
    eta = (num_iterations - record["step"]) * seconds_per_step
    val = f" | val {record['val_loss']:.4f}" if "val_loss" in record else ""
    log.info("step %d/%d | loss %.4f%s | lr %.3e | %s tok/s | elapsed %s | ETA %s", record["step"], num_iterations,
             record["train_loss"], val, record["lr"], f"{record['tokens_per_s']:,.0f}",
             _duration(record["elapsed_s"]), _duration(eta))


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m{rest % 60:02d}s" if h else f"{rest // 60}m{rest % 60:02d}s"


def _summary(cfg: RunConfig, state: _Progress, status: str, stopped_early: str | None, params: dict[str, int],
             fpt: float, device: torch.device, train_tokens: str | Path, valid_tokens: str | Path) -> dict[str, Any]:
    tokens = state.step * cfg.tokens_per_step
    tokens_per_s = tokens / state.elapsed_s if state.elapsed_s > 0 else None
    peak = peak_flops(device, cfg.train.dtype)
    return {
        "status": status,
        "stopped_early": stopped_early,
        "final_val_loss": state.last_val_loss,
        "best_val_loss": state.best_val_loss,
        "final_train_loss": state.last_train_loss if state.last_train_loss is None
        or math.isfinite(state.last_train_loss) else None,
        "steps": state.step,
        "num_iterations": cfg.num_iterations,
        "tokens": tokens,
        "wall_time_s": state.elapsed_s,
        "tokens_per_s": tokens_per_s,
        "parameters": params,
        "flops_per_token": fpt,
        "mfu": fpt * tokens_per_s / peak if peak and tokens_per_s else None,
        "config": cfg.to_dict(),
        "code": code_version(),
        "versions": versions(),
        "device": device_name(device),
        "data": {"train_tokens": os.fspath(train_tokens), "valid_tokens": os.fspath(valid_tokens)},
    }


def _finish(model: nn.Module, cfg: RunConfig, state: _Progress,
            summary: dict[str, Any], partial_metrics: Path, ckpt_path: Path,
            model_path: Path, metrics_path: Path, summary_path: Path) -> None:
    """Move the finished files into the declared outputs (each write atomic), then drop the progress files."""
    for path in (model_path, metrics_path, summary_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    # Weights only: the final model is for sampling, and optimizer moments would triple its size.
    save_checkpoint(model, None, state.step, model_path, config=cfg.to_dict(), extra={"status": summary["status"]})
    if not partial_metrics.exists():
        partial_metrics.touch()
    move_into_place(partial_metrics, metrics_path)
    atomic_write_text(summary_path, json.dumps(summary, indent=2) + "\n")
    ckpt_path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        ckpt_path.parent.rmdir()  # only if empty: stale checkpoints set aside stay
    log.info("finished: status %s, %d steps, final val loss %s; wrote %s", summary["status"], state.step,
             summary["final_val_loss"], model_path)

