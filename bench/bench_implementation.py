"""Benchmark: which fast paths `train.implementation: auto` should use on this device, by measurement.

    python bench/bench_implementation.py --threads 1      # CPU, course TinyStories shapes, batch 8 × 256

Times the training step (cs336lm.training.step.TrainStep: what training runs) for each candidate combination of
attention
backend, AdamW implementation, autocast dtype and torch.compile, all holding the same weights and fed the same
batches, in interleaved rounds after warm-up; prints tokens per second (and per CPU-second, which other processes
on a shared machine barely disturb) and each candidate's ratio to the from-scratch reference. Compilation time is
reported separately, since a run pays it once before its first step; so is one AdamW step alone per
implementation, which a batch of 8 hides in the noise of the forward and backward passes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_train_step import time_steps  # noqa: E402

from cs336lm.config import RunConfig  # noqa: E402
from cs336lm.lm.model import TransformerLM  # noqa: E402
from cs336lm.training.device import device_name, resolve_device, synchronize  # noqa: E402
from cs336lm.training.step import TrainStep, build_optimizer  # noqa: E402

CANDIDATES = {  # name -> fine-grained overrides
    "reference": {"model.attention_backend": "reference", "optim.implementation": "reference"},
    "sdpa": {"model.attention_backend": "sdpa", "optim.implementation": "reference"},
    "sdpa+foreach": {"model.attention_backend": "sdpa", "optim.implementation": "foreach"},
    "sdpa+fused": {"model.attention_backend": "sdpa", "optim.implementation": "fused"},
    "sdpa+fused+bf16": {"model.attention_backend": "sdpa", "optim.implementation": "fused", "train.dtype": "bfloat16"},
    "sdpa+fused+compile": {"model.attention_backend": "sdpa", "optim.implementation": "fused", "train.compile": True},
}


def time_optimizers(device: torch.device, rounds: int) -> dict[str, float]:
    """CPU seconds of one AdamW step over the course model's parameters, per implementation (best of rounds)."""
    steps = {}
    for impl in ("reference", "foreach", "fused"):
        model = TransformerLM(RunConfig().model).to(device)
        for p in model.parameters():
            p.grad = torch.randn_like(p) * 1e-3
        steps[impl] = build_optimizer(list(model.parameters()), RunConfig.from_flat({"optim.implementation": impl}))
        steps[impl].step()  # allocates the moments
    best = {impl: float("inf") for impl in steps}
    for _ in range(rounds):
        for impl, optimizer in steps.items():
            synchronize(device)
            start = time.process_time()
            optimizer.step()
            synchronize(device)
            best[impl] = min(best[impl], time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per candidate per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--skip", nargs="*", default=[], choices=list(CANDIDATES), help="candidates to leave out")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    base = {"train.batch_size": args.batch_size, "train.dtype": "float32", "train.compile": False,
            "train.device": args.device}
    torch.manual_seed(0)
    weights = TransformerLM(RunConfig.from_flat({"model.attention_backend": "reference"}).model).state_dict()
    steps, compile_s = {}, {}
    for name, overrides in CANDIDATES.items():
        if name in args.skip:
            continue
        cfg = RunConfig.from_flat({**base, **overrides})
        model = TransformerLM(cfg.model).to(device)
        model.load_state_dict(weights)
        steps[name] = TrainStep(model, cfg, device)
    shape = (args.batch_size, RunConfig().model.context_length)
    g = torch.Generator().manual_seed(0)
    batches = [tuple(torch.randint(0, RunConfig().model.vocab_size, shape, generator=g).to(device) for _ in "xy")
               for _ in range(args.steps)]
    for name, step in steps.items():  # warm-up: allocator, autotuning, compilation
        start = time.perf_counter()
        step(*batches[0], lr=1e-3)[0].item()
        compile_s[name] = time.perf_counter() - start
        step(*batches[0], lr=1e-3)[0].item()
    wall = {name: 0.0 for name in steps}
    cpu = dict(wall)
    for _ in range(args.rounds):
        for name, step in steps.items():
            step_wall, step_cpu = time_steps(step, batches, device)
            wall[name] += step_wall * len(batches)
            cpu[name] += step_cpu * len(batches)
    tokens = args.rounds * args.steps * args.batch_size * shape[1]
    print(f"{device_name(device)}, batch {args.batch_size} × {shape[1]}, {args.rounds} rounds × {args.steps} steps")
    print(f"{'candidate':<22} {'tok/s':>8} {'tok/CPU-s':>10} {'× reference':>12} {'first step s':>13}")
    ref = tokens / cpu["reference"] if "reference" in cpu else None
    for name in steps:
        per_cpu = tokens / cpu[name]
        ratio = f"{per_cpu / ref:.2f}" if ref else "-"
        print(f"{name:<22} {tokens / wall[name]:>8.0f} {per_cpu:>10.0f} {ratio:>12} {compile_s[name]:>13.1f}")
    print("AdamW step alone, CPU s: " + ", ".join(f"{impl} {s:.3f}"
                                                  for impl, s in time_optimizers(device, 5 * args.rounds).items()))


if __name__ == "__main__":
    main()
