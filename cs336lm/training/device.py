"""Device selection, mixed-precision autocast and run provenance (code identity, versions, hardware) for
training runs (handout §5, §7; the summary's fields)."""

from __future__ import annotations

import contextlib
import platform
import subprocess
from pathlib import Path

import torch

# Dense peak matmul throughput in FLOP/s per device name substring, for MFU. float32 means true fp32 (TF32 off,
# PyTorch's default); names are matched in order, so the more specific ones come first.
PEAK_FLOPS: list[tuple[str, dict[str, float]]] = [
    ("H100 PCIe", {"bfloat16": 756e12, "float32": 51e12}),
    ("H100", {"bfloat16": 989e12, "float32": 67e12}),
    ("H200", {"bfloat16": 989e12, "float32": 67e12}),
    ("A100", {"bfloat16": 312e12, "float32": 19.5e12}),
]


# What running out of memory raises: CUDA a torch.OutOfMemoryError (a RuntimeError), the CPU and MPS allocators plain
# RuntimeErrors with one of these messages, Python's own allocations a MemoryError. Catch these, then ask
# is_out_of_memory.
MEMORY_ERRORS = (RuntimeError, MemoryError)
_OUT_OF_MEMORY_MESSAGES = ("can't allocate memory", "out of memory", "MPS backend out of memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether an exception says that memory ran out (on any device), rather than reporting a bug."""
    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or (
        isinstance(exc, RuntimeError) and any(s in str(exc) for s in _OUT_OF_MEMORY_MESSAGES))


def resolve_device(spec: str = "auto") -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device that is not there is an error, not a fallback."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"train.device = {spec!r} but CUDA is not available here; use auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(f"train.device = {spec!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"train.device = {spec!r} but MPS is not available here; use auto or cpu")
    return device


def autocast(device: torch.device, dtype: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for matmuls while master weights, optimizer state and reductions stay float32."""
    # e.g. train.dtype "auto", which cs336lm.training.implementation.resolve decides
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"autocast dtype {dtype!r} is not float32 or bfloat16; resolve the config for the device "
                         "first (cs336lm.training.implementation.resolve)")
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    return f"CPU {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def peak_flops(device: torch.device, dtype: str) -> float | None:
    """The device's dense peak for `dtype`, or None where unknown (CPUs, unlisted GPUs): MFU is then null."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peaks in PEAK_FLOPS:
        if key in name:
            return peaks[dtype]
    return None


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so wall-clock timings measure work done, not work launched."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def code_version() -> dict[str, str | bool | None]:
    """Git SHA and dirty flag of the checkout holding this package; None where it is not a git checkout."""
    root = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if sha else None
    return {"git_sha": sha, "git_dirty": None if status is None else bool(status)}


def versions() -> dict[str, str | None]:
    import numpy

    return {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "numpy": numpy.__version__}
