"""Benchmark: training-step throughput of our TransformerLM (fast paths on) vs the same architecture built from
torch built-ins (nn.Linear, nn.RMSNorm, F.scaled_dot_product_attention, F.cross_entropy, torch.optim.AdamW).

    python bench/bench_train_step.py                      # CPU fp32, course TinyStories shapes, batch 8 × 256
    python bench/bench_train_step.py --device cuda --dtype bfloat16 --compile --batch-size 128   # one H100

Both models get identical steps (forward, loss, backward, clip to 1.0, AdamW), timed in interleaved rounds after
warm-up so that machine noise hits both alike; we report tokens/s, their ratio, and MFU where the peak is known.
On a shared CPU, `--threads 1` also gives tokens per CPU-second, which other processes barely disturb.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from cs336lm.config import ModelConfig, RunConfig  # noqa: E402
from cs336lm.device import autocast, device_name, peak_flops, resolve_device, synchronize  # noqa: E402
from cs336lm.model import TransformerLM, flops_per_token  # noqa: E402
from cs336lm.train import TrainStep  # noqa: E402


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
        fused = device.type == "cuda"
        self.optimizer = torch.optim.AdamW(
            model.parameters(),
            lr=o.lr_max,
            betas=(o.beta1, o.beta2),
            eps=o.eps,
            weight_decay=o.weight_decay,
            fused=fused,
            foreach=not fused,
        )

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


def time_steps(step, batches, n: int, device: torch.device) -> tuple[float, float]:
    """Wall-clock and process CPU seconds per step over n steps, synchronized at both ends."""
    synchronize(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(n):
        loss, _ = step(*batches[i % len(batches)], lr=1e-3)
    loss.item()
    synchronize(device)
    return (time.perf_counter() - start) / n, (time.process_time() - cpu_start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per model per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--optimizer",
        default=None,
        choices=("reference", "foreach", "fused"),
        help="our AdamW implementation (default: fused on CUDA, foreach elsewhere)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    implementation = args.optimizer or ("fused" if device.type == "cuda" else "foreach")
    cfg = RunConfig.from_flat(
        {
            "model.attention_backend": "sdpa",
            "optim.implementation": implementation,
            "train.dtype": args.dtype,
            "train.compile": args.compile,
            "train.batch_size": args.batch_size,
            "train.device": args.device,
        }
    )
    c = cfg.model
    torch.manual_seed(0)
    steps = {
        "ours": TrainStep(TransformerLM(c).to(device), cfg, device),
        "torch built-ins": BuiltinStep(BuiltinLM(c).to(device), cfg, device),
    }
    g = torch.Generator().manual_seed(0)
    batches = [
        tuple(
            torch.randint(0, c.vocab_size, (args.batch_size, c.context_length), generator=g).to(device)
            for _ in range(2)
        )
        for _ in range(4)
    ]
    tokens = args.batch_size * c.context_length
    print(
        f"{device_name(device)}, torch {torch.__version__}, {torch.get_num_threads()} threads; {args.dtype}, "
        f"compile={args.compile}, batch {args.batch_size} × {c.context_length}, our AdamW: {implementation}"
    )
    for name, step in steps.items():
        time_steps(step, batches, args.warmup, device)
        print(f"  warmed up {name}")
    seconds: dict[str, list[tuple[float, float]]] = {name: [] for name in steps}
    for r in range(args.rounds):
        for name, step in (steps.items() if r % 2 == 0 else reversed(steps.items())):
            seconds[name].append(time_steps(step, batches, args.steps, device))
        print(f"  round {r + 1}: " + ", ".join(f"{n} {tokens / s[-1][0]:,.0f} tok/s" for n, s in seconds.items()))
    peak = peak_flops(device, args.dtype)
    for clock, label in ((0, "tokens/s"), (1, "tokens/CPU-s")):
        if clock == 1 and (device.type != "cpu" or torch.get_num_threads() != 1):
            break  # CPU time only measures work for a single-threaded CPU run
        rates = {name: tokens / statistics.median(t[clock] for t in s) for name, s in seconds.items()}
        for name, rate in rates.items():
            mfu = f", MFU {flops_per_token(c) * rate / peak:.1%}" if peak else ""
            print(f"{name:>16}: {rate:,.0f} {label} (median of {args.rounds} rounds × {args.steps} steps){mfu}")
        ratios = [b[clock] / a[clock] for a, b in zip(seconds["ours"], seconds["torch built-ins"], strict=True)]
        print(f"ratio ours / built-ins ({label}): {rates['ours'] / rates['torch built-ins']:.3f} "
              f"(per round: {', '.join(f'{r:.3f}' for r in ratios)}; target ≥ 0.95)")

if __name__ == "__main__":
    main()
