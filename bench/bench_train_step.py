"""Benchmark: training-step throughput of our TransformerLM against the same architecture built from torch built-ins
(nn.Linear, nn.Embedding, nn.RMSNorm, F.scaled_dot_product_attention, F.silu, F.cross_entropy, torch.optim.AdamW).

    python bench/bench_train_step.py                      # CPU: our from-scratch path, fp32, course shapes, 8 × 256
    python bench/bench_train_step.py --profile            # ... and the top ops of our step (torch.profiler)
    python bench/bench_train_step.py --ours fast --device cuda --dtype bfloat16 --compile --batch-size 128
    python bench/bench_train_step.py --ours fast --set model.d_model=64 --set model.num_layers=2 --json out.json

`--ours reference` (the default) is every from-scratch module: our attention, softmax, RMSNorm, SwiGLU, cross-entropy
and our AdamW's per-parameter loop, in float32 and eager. `--ours fast` is our model on its fast paths (SDPA and
torch's fused AdamW, plus --dtype and --compile). The built-ins always run at their best: SDPA with is_causal, torch's
fused AdamW (on the CPU too, where it is ~5x faster than foreach), and the same --dtype and --compile.

Both get identical steps (forward, loss, backward, clip to 1.0, AdamW) on fresh random batches (no batch is seen
twice), timed in interleaved rounds after warm-up, alternating which goes first, so that machine noise hits both
alike. We print each round's ratio and the median; on CPU with one thread (the default there) the ratio is of
tokens per CPU-second, which other processes on a shared machine disturb far less than wall time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from cs336lm.config import ModelConfig, RunConfig  # noqa: E402
from cs336lm.lm.model import TransformerLM, flops_per_token  # noqa: E402
from cs336lm.training.device import autocast, device_name, peak_flops, resolve_device, synchronize  # noqa: E402
from cs336lm.training.step import TrainStep  # noqa: E402

TARGET = {"reference": 0.85, "fast": 0.95}


class BuiltinBlock(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.num_heads = c.num_heads
        self.ln1, self.ln2 = nn.RMSNorm(c.d_model, eps=c.rms_eps), nn.RMSNorm(c.d_model, eps=c.rms_eps)
        self.q, self.k, self.v, self.o = (nn.Linear(c.d_model, c.d_model, bias=False) for _ in range(4))
        self.w1, self.w3 = nn.Linear(c.d_model, c.d_ff, bias=False), nn.Linear(c.d_model, c.d_ff, bias=False)
        self.w2 = nn.Linear(c.d_ff, c.d_model, bias=False)

    def forward(self, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        h = self.ln1(x)
        q, k, v = (p(h).view(B, T, self.num_heads, -1).transpose(1, 2) for p in (self.q, self.k, self.v))
        q, k = rotate(q, rope), rotate(k, rope)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o(y.transpose(1, 2).reshape(B, T, d))
        h = self.ln2(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


def rotate(x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
    """RoPE on adjacent pairs as complex numbers (the Llama reference implementation's way)."""
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(pairs * rope).flatten(-2).type_as(x)


class BuiltinLM(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        self.layers = nn.ModuleList(BuiltinBlock(c) for _ in range(c.num_layers))
        self.ln_final = nn.RMSNorm(c.d_model, eps=c.rms_eps)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        inv_freq = c.rope_theta ** (-torch.arange(0, c.head_dim, 2).float() / c.head_dim)
        angles = torch.outer(torch.arange(c.context_length).float(), inv_freq)
        self.register_buffer("rope", torch.polar(torch.ones_like(angles), angles), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        rope = self.rope[: ids.shape[-1]]
        for layer in self.layers:
            x = layer(x, rope)
        return self.lm_head(self.ln_final(x))


class BuiltinStep:
    def __init__(self, model: nn.Module, cfg: RunConfig, device: torch.device):
        self.model, self.device, self.dtype = model, device, cfg.train.dtype
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr_max, betas=(o.beta1, o.beta2), eps=o.eps,
                                           weight_decay=o.weight_decay, fused=True)

        def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(model(x).flatten(0, 1).float(), y.flatten())

        self.loss_of = torch.compile(loss_of) if cfg.train.compile else loss_of

    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with autocast(self.device, self.dtype):
            loss = self.loss_of(x, y)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(self.model.parameters(), 1.0, foreach=True)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach(), norm


class FreshBatches:
    """Random (x, y) batches, each handed out once; generated on the CPU from a seed, so both models see the
    same sequence of data."""

    def __init__(self, c: ModelConfig, batch_size: int, device: torch.device, seed: int = 0):
        self.shape, self.vocab_size, self.device = (batch_size, c.context_length), c.vocab_size, device
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [tuple(torch.randint(0, self.vocab_size, self.shape, generator=self.generator).to(self.device)
                      for _ in range(2)) for _ in range(n)]


def time_steps(step, batches: list, device: torch.device) -> tuple[float, float]:
    """Wall-clock and process CPU seconds per step over the batches, synchronized at both ends."""
    synchronize(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    for x, y in batches:
        loss, _ = step(x, y, lr=1e-3)
    loss.item()
    synchronize(device)
    return (time.perf_counter() - start) / len(batches), (time.process_time() - cpu_start) / len(batches)


def print_profile(step, batches: list, rows: int = 12) -> None:
    """The ops taking most of our step's time, by self CPU time and share, over the given batches."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for x, y in batches:
            step(x, y, lr=1e-3)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"top ops of our step (self time, share of all ops; {len(batches)} steps under torch.profiler)")
    for e in events[:rows]:
        print(f"  {e.key:<40} {e.self_cpu_time_total / total:6.1%}  {e.count // len(batches):>4} calls/step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ours", default="reference", choices=("reference", "fast"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per model per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: 1 on CPU)")
    parser.add_argument("--profile", action="store_true", help="also print the top ops of our step")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a dotted config override for both models, e.g. model.d_model=64 (default: course shapes)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()
    device = resolve_device(args.device)
    if args.ours == "reference" and (args.dtype != "float32" or args.compile):
        parser.error("--ours reference is float32 and eager by definition; use --ours fast with --dtype/--compile")
    if args.threads or device.type == "cpu":
        torch.set_num_threads(args.threads or 1)
    ours = {"model.attention_backend": "reference" if args.ours == "reference" else "sdpa",
            "optim.implementation": "reference" if args.ours == "reference" else "fused"}
    common = {"train.dtype": args.dtype, "train.compile": args.compile, "train.batch_size": args.batch_size,
              "train.device": args.device, "train.token_budget": 2**62}
    for item in args.set:
        key, _, value = item.partition("=")
        common[key] = yaml.safe_load(value)
    cfg_ours, cfg_builtin = RunConfig.from_flat({**common, **ours}), RunConfig.from_flat(common)
    c = cfg_ours.model
    torch.manual_seed(0)
    steps = {
        "ours": TrainStep(TransformerLM(c).to(device), cfg_ours, device),
        "torch built-ins": BuiltinStep(BuiltinLM(c).to(device), cfg_builtin, device),
    }
    batches = {name: FreshBatches(c, args.batch_size, device) for name in steps}
    tokens = args.batch_size * c.context_length
    print(f"{device_name(device)}, torch {torch.__version__}; ours: {args.ours} ({', '.join(ours.values())}); "
          f"{args.dtype}, compile={args.compile}, batch {args.batch_size} × {c.context_length}")
    for name, step in steps.items():
        time_steps(step, batches[name](args.warmup), device)
        print(f"  warmed up {name}")
    seconds: dict[str, list[tuple[float, float]]] = {name: [] for name in steps}
    for r in range(args.rounds):
        for name, step in (steps.items() if r % 2 == 0 else reversed(steps.items())):
            seconds[name].append(time_steps(step, batches[name](args.steps), device))
        print(f"  round {r + 1}: " + ", ".join(f"{n} {tokens / s[-1][0]:,.0f} tok/s" for n, s in seconds.items()))
    peak = peak_flops(device, args.dtype)
    per_cpu_second = device.type == "cpu" and torch.get_num_threads() == 1  # CPU time measures work only then
    results = {"device": device_name(device), "our_path": args.ours, "dtype": args.dtype, "compile": args.compile,
               "batch_size": args.batch_size, "context_length": c.context_length, "flops_per_token": flops_per_token(c),
               "peak_flops": peak}
    for clock, label in ((0, "tokens/s"), (1, "tokens/CPU-s"))[: 1 + per_cpu_second]:
        for name, s in seconds.items():
            rate = tokens / statistics.median(t[clock] for t in s)
            mfu = flops_per_token(c) * rate / peak if peak else None
            print(f"{name:>16}: {rate:,.0f} {label} (median of {args.rounds} rounds × {args.steps} steps)"
                  + (f", MFU {mfu:.1%}" if mfu else ""))
            results.setdefault(name, {})[label] = rate
            if clock == 0:
                results[name]["mfu"] = mfu
        ratios = [b[clock] / a[clock] for a, b in zip(seconds["ours"], seconds["torch built-ins"], strict=True)]
        print(f"ratio ours / built-ins ({label}): median {statistics.median(ratios):.3f}, range "
              f"{min(ratios):.3f}–{max(ratios):.3f} (per round: {', '.join(f'{r:.3f}' for r in ratios)}; "
              f"target ≥ {TARGET[args.ours]})")
        results[f"ratio ({label})"] = {"median": statistics.median(ratios), "per_round": ratios}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.profile:
        print_profile(steps["ours"], batches["ours"](2))


if __name__ == "__main__":
    main()
