"""The largest training batch that fits on a device, for the batch-size experiment's "up to the memory limit"
(handout §7.2): doubling, then bisection, where each trial runs a few real steps of cs336lm.training.step.TrainStep (so
compile and bf16 autocast count). On CUDA/MPS a trial fits when it raises no out-of-memory error; on CPU when a
fresh child process's peak resident memory stays under a configured cap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cs336lm.config import RunConfig
from cs336lm.lm.model import TransformerLM
from cs336lm.training.device import MEMORY_ERRORS, device_name, is_out_of_memory, resolve_device
from cs336lm.training.step import BatchTooLargeError, TrainStep

GiB = 2**30


@dataclass(frozen=True)
class Trial:
    """One batch size tried: whether it fit, the peak memory measured (None where the device has no such
    counter), and why it did not fit."""

    batch_size: int
    fits: bool
    peak_bytes: int | None
    error: str | None = None


@dataclass(frozen=True)
class ProbeResult:
    batch_size: int  # the largest batch that fit
    trials: list[Trial]  # in the order they ran
    device: str
    memory_cap_bytes: int | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def largest_batch_size(
    cfg: RunConfig,
    *,
    device: str | torch.device | None = None,
    memory_cap_bytes: int | None = None,
    max_batch_size: int = 4096,
    steps: int = 2,
) -> ProbeResult:
    """The largest batch of cfg.model.context_length tokens, up to max_batch_size, that trains `steps` steps.

    device defaults to cfg.train.device. On CPU, memory_cap_bytes is required: the peak resident memory of the
    whole training process (torch itself included, as a memory limit such as Slurm's --mem counts it). On
    CUDA it is optional and enforced through the allocator's per-process memory fraction. Raises
    BatchTooLargeError when even a batch of 1 does not fit.
    """
    device = resolve_device(str(device or cfg.train.device))
    if max_batch_size < 1 or steps < 1:
        raise ValueError(f"max_batch_size = {max_batch_size} and steps = {steps} must each be >= 1")
    if memory_cap_bytes is not None and memory_cap_bytes <= 0:
        raise ValueError(f"memory_cap_bytes = {memory_cap_bytes} must be > 0 (or None for the whole device)")
    if device.type == "cpu" and memory_cap_bytes is None:
        raise ValueError("probing the batch size on CPU needs memory_cap_bytes: the CPU allocator does not fail "
                         "before the machine swaps or the kernel kills the process")
    if device.type == "mps" and memory_cap_bytes is not None:
        raise ValueError("memory_cap_bytes is not supported on MPS; probe the whole device with None")

    with _trial_runner(cfg, device, steps, memory_cap_bytes) as trial:
        best, trials = search_largest(trial, max_batch_size)
    if best == 0:
        first = trials[0]
        peak = f"; its peak was {first.peak_bytes / GiB:.2f} GiB" if first.peak_bytes else ""
        cap = f" under the cap of {memory_cap_bytes / GiB:.2f} GiB" if memory_cap_bytes else ""
        raise BatchTooLargeError(
            f"even a batch of 1 × {cfg.model.context_length} tokens does not fit{cap} on {device_name(device)}"
            f"{peak} ({first.error}); raise the memory cap, or shrink the model or model.context_length")
    return ProbeResult(best, trials, device_name(device), memory_cap_bytes)


def search_largest(trial: Callable[[int], Trial], max_batch_size: int) -> tuple[int, list[Trial]]:
    """Double from 1 until a batch fails (or max_batch_size fits), then bisect between the last fit and the
    first failure; returns (the largest batch that fit, 0 if none did; the trials in order)."""
    trials: list[Trial] = []

    def fits(batch_size: int) -> bool:
        trials.append(trial(batch_size))
        return trials[-1].fits

    if not fits(1):
        return 0, trials
    fit, failed = 1, None
    while fit < max_batch_size:
        candidate = min(2 * fit, max_batch_size)
        if not fits(candidate):
            failed = candidate
            break
        fit = candidate
    while failed is not None and failed - fit > 1:
        middle = (fit + failed) // 2
        if fits(middle):
            fit = middle
        else:
            failed = middle
    return fit, trials


def _build_step(cfg: RunConfig, device: torch.device) -> TrainStep:
    torch.manual_seed(cfg.train.seed)
    return TrainStep(TransformerLM(cfg.model).to(device), cfg, device)


def _train_steps(step: TrainStep, cfg: RunConfig, batch_size: int, steps: int, device: torch.device) -> None:
    """`steps` training steps on random tokens, as the trainer runs them."""
    shape = (batch_size, cfg.model.context_length)
    for _ in range(steps):
        x, y = (torch.randint(0, cfg.model.vocab_size, shape, device=device) for _ in range(2))
        loss, _ = step(x, y, lr=cfg.optim.lr_max)
    loss.item()  # wait for the device: an asynchronous out-of-memory error surfaces here at the latest


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


class _InProcessTrials:
    """Trials on an accelerator, all on one model and optimizer: their weights, gradients and optimizer state are
    what a run holds throughout, and one compiled step then serves every batch size (torch.compile marks the batch
    dimension dynamic at its first change) instead of a compilation per trial. Out of memory means the batch does
    not fit; the trial's memory is freed before the next one."""

    def __init__(self, cfg: RunConfig, device: torch.device, steps: int):
        self.cfg, self.device, self.steps = cfg, device, steps
        self.step: TrainStep | None = None
        torch._dynamo.reset()  # no compiled code left from earlier work counts against the recompile limit

    def __call__(self, batch_size: int) -> Trial:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        error = None
        try:
            if self.step is None:
                self.step = _build_step(self.cfg, self.device)
            _train_steps(self.step, self.cfg, batch_size, self.steps, self.device)
        except MEMORY_ERRORS as exc:
            if not is_out_of_memory(exc):
                raise
            error = _first_line(exc)  # keep no reference to the exception: its frames hold the trial's tensors
        if self.step is not None:
            self.step.optimizer.zero_grad(set_to_none=True)  # gradients of a step cut short by out of memory
        gc.collect()
        peak = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            peak = torch.cuda.max_memory_reserved(self.device)
        elif self.device.type == "mps":
            torch.mps.empty_cache()
        return Trial(batch_size, error is None, peak, error)

    def close(self) -> None:
        """Free the model and optimizer, which compiled code would otherwise keep alive through its guards."""
        self.step = None
        torch._dynamo.reset()
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


@contextlib.contextmanager
def _trial_runner(
    cfg: RunConfig, device: torch.device, steps: int, cap: int | None
) -> Iterator[Callable[[int], Trial]]:
    """batch size -> Trial: on CPU through a fork server; on CUDA in this process, with the allocator limited to
    the cap (if any), so that exceeding it raises out of memory."""
    if device.type == "cpu":
        with _ForkServer() as server:
            yield lambda batch_size: server.trial(cfg, batch_size, steps, cap)
        return
    if device.type == "cuda" and cap is not None:
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(cap / total, 1.0), device)
    trials = _InProcessTrials(cfg, device, steps)
    try:
        yield trials
    finally:
        trials.close()
        if device.type == "cuda" and cap is not None:
            torch.cuda.set_per_process_memory_fraction(1.0, device)


class _ForkServer:
    """CPU trials, each in a fresh process forked from a child interpreter that has imported torch and run nothing.

    A fresh process per trial makes its peak resident memory the trial's alone (freed memory stays in a process's
    allocator); forking from a server pays torch's import once per probe, not once per trial. The caller's process
    is not forked: it may be large, threaded, or a test runner. The peak is VmHWM from /proc/self/status, reset at
    the start of the trial; ru_maxrss is no good on Linux, where after fork and exec a child inherits its parent's
    high-water mark. Where /proc is missing (macOS) ru_maxrss is the fallback.
    """

    def __init__(self):
        package_root = str(Path(__file__).resolve().parents[1])  # the server runs this very code, installed or not
        path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen([sys.executable, "-m", "cs336lm.training.batch_probe"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.stderr, text=True,
                                        env={**os.environ, "PYTHONPATH": path})

    def __enter__(self) -> _ForkServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stdin.close()
        self.process.wait()
        self.stderr.close()

    def trial(self, cfg: RunConfig, batch_size: int, steps: int, cap: int) -> Trial:
        request = {"config": cfg.to_dict(), "batch_size": batch_size, "steps": steps}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            self.stderr.seek(0)
            raise RuntimeError(f"the batch-size probe's trial server exited:\n{self.stderr.read()[-3000:]}")
        report = json.loads(line)
        if "traceback" in report:
            raise RuntimeError(f"batch-size trial at batch {batch_size} failed:\n{report['traceback']}")
        peak, error = report["peak_bytes"], report["error"]
        if error is None and peak > cap:
            error = f"peak resident memory {peak / GiB:.3f} GiB is over the cap of {cap / GiB:.3f} GiB"
        return Trial(batch_size, error is None, peak, error)


def _serve_trials() -> None:
    """The fork server's loop: one JSON request per stdin line, one JSON report per stdout line."""
    import torch._dynamo  # noqa: F401  (the first optimizer step imports it: once here, not once per trial)

    out = sys.stdout
    for line in sys.stdin:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:  # whatever happens, the trial process must never return into this loop
                os.close(read_end)
                os.dup2(2, 1)  # anything the trial prints goes to stderr, not into the reports
                with os.fdopen(write_end, "w") as pipe:
                    pipe.write(json.dumps(_child_trial(json.loads(line))))
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            report = pipe.read()
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):  # SIGKILL from the kernel's out-of-memory killer, most likely
            signum = os.WTERMSIG(status)
            report = json.dumps({"peak_bytes": None, "error": f"the trial process was killed by signal {signum}"})
        elif not report:
            report = json.dumps({"traceback": "the trial process ended without a report (see the server's stderr)"})
        out.write(report + "\n")
        out.flush()


def _child_trial(request: dict[str, Any]) -> dict[str, Any]:
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # restart the peak-RSS count here (Linux >= 4.0)
    except OSError:
        pass
    error = None
    try:
        cfg, cpu = RunConfig.from_dict(request["config"]), torch.device("cpu")
        _train_steps(_build_step(cfg, cpu), cfg, request["batch_size"], request["steps"], cpu)
    except Exception as exc:
        if not is_out_of_memory(exc):
            return {"traceback": traceback.format_exc()}
        error = _first_line(exc)
    return {"peak_bytes": _peak_resident_bytes(), "error": error}


def _peak_resident_bytes() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    import resource

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # bytes on macOS, KiB elsewhere


if __name__ == "__main__":
    _serve_trials()
