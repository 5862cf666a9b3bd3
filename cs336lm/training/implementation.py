"""Which implementation each fast path (attention, dtype, compile, optimizer) uses: `train.implementation` names a
preset, resolved per device type; each of the four fine-grained keys left at `auto` follows the preset, and an explicit
value overrides that one path. Torch-free, so a config resolves without a device.

    reference  every from-scratch module in float32: our attention, our AdamW's per-parameter loop, no compile.
    fast       every fast path: F.scaled_dot_product_attention, bf16 autocast, torch.compile, torch's fused AdamW.
    auto       fast on CUDA. On CPU and MPS the fastest paths that stay equal to the reference in float32: SDPA
               and torch's fused AdamW, eager. Measured on CPU with bench/bench_implementation.py (course shapes,
               batch 8 × 256, one thread; numbers in the README): SDPA gives 1.7× the reference's tokens per
               CPU-second; the fused AdamW step takes a quarter of our per-parameter loop's CPU time (our
               multi-tensor one is slower still on CPU); bf16 autocast runs about 20× slower than float32; and
               torch.compile gains 1-6 % only after minutes of compiling. MPS is not measured; it takes the CPU's
               choice.
"""

from __future__ import annotations

from typing import Any

from cs336lm.config import AUTO_ATTENTION_BACKEND, RunConfig

# The fine-grained key of each fast path, and the short name the summary records it under.
PATHS = {"model.attention_backend": "attention", "train.dtype": "dtype", "train.compile": "compile",
         "optim.implementation": "optimizer"}

PRESETS: dict[str, dict[str, Any]] = {
    "reference": {"model.attention_backend": "reference", "train.dtype": "float32", "train.compile": False,
                  "optim.implementation": "reference"},
    "fast": {"model.attention_backend": "sdpa", "train.dtype": "bfloat16", "train.compile": True,
             "optim.implementation": "fused"},
    "equal": {"model.attention_backend": AUTO_ATTENTION_BACKEND, "train.dtype": "float32", "train.compile": False,
              "optim.implementation": "fused"},
}


def preset(implementation: str, device_type: str) -> dict[str, Any]:
    """The fine-grained values `implementation` (auto | fast | reference) stands for on a device type."""
    if implementation == "auto":
        return PRESETS["fast" if device_type == "cuda" else "equal"]
    return PRESETS[implementation]


def resolve(cfg: RunConfig, device_type: str) -> RunConfig:
    """`cfg` with every fine-grained `auto` replaced by the preset's value for `device_type` (cpu, cuda, mps)."""
    chosen = preset(cfg.train.implementation, device_type)
    flat = cfg.to_flat()
    return RunConfig.from_flat({key: chosen[key] for key in PATHS if flat[key] == "auto"}, base=cfg)


def describe(cfg: RunConfig, device_type: str) -> dict[str, Any]:
    """What each path resolved to, for logs and summary.json: {"requested", "attention", "dtype", "compile",
    "optimizer"}."""
    flat = resolve(cfg, device_type).to_flat()
    return {"requested": cfg.train.implementation, **{name: flat[key] for key, name in PATHS.items()}}

