"""Hand-written run directories (metrics.jsonl + summary.json) for the report and writeup tests."""

from __future__ import annotations

import json
import math
from pathlib import Path

from cs336lm.config import RunConfig
from cs336lm.summary import Dataset, Implementation, Parameters, RunSummary, write_summary


def make_run(path: Path, *, lr: float = 1e-3, batch_size: int = 16, final: float | None = 2.0, diverged: bool = False,
             steps: int = 40, norm: str = "rmsnorm", budget: float = 0.0, non_embedding: int = 1000) -> Path:
    """A run directory with a plausible falling (or exploding) loss curve and its summary."""
    path.mkdir(parents=True)
    start = 7.0
    lines = []
    for step in range(1, steps + 1, 5):
        loss = start * (1 + step) if diverged else final + (start - final) * math.exp(-step / 10)
        line = {"step": step, "tokens": step * batch_size * 8, "elapsed_s": step * 0.1, "lr": lr,
                "train_loss": loss if loss < 1e3 else None, "grad_norm": 1.0, "tokens_per_s": 1000.0 * batch_size}
        if step % 10 == 1:
            line["val_loss"] = None if diverged and step > 1 else loss
        lines.append(json.dumps(line))
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    config = RunConfig.from_flat({"model.norm": norm, "model.d_ff": 96, "optim.lr_max": lr,
                                  "optim.lr_min": min(lr, 1e-4), "train.batch_size": batch_size,
                                  "train.wall_clock_budget_s": budget})
    write_summary(path / "summary.json", RunSummary(
        status="diverged" if diverged else "ok", stopped_early="diverged" if diverged else None,
        divergence="the training loss is nan at step 40" if diverged else None,
        final_val_loss=None if diverged else final, final_val_tokens=0 if diverged else 4096,
        best_val_loss=None if diverged else final, final_train_loss=None if diverged else final,
        no_learning_loss=5.0, steps=steps, num_iterations=steps, tokens=steps * batch_size * 8,
        wall_time_s=steps * 0.1, eval_time_s=1.0, tokens_per_s=1000.0 * batch_size,
        parameters=Parameters(total=non_embedding + 500, non_embedding=non_embedding), flops_per_token=1e4, mfu=None,
        implementation=Implementation(requested="auto", attention="sdpa", dtype="float32", compile=False,
                                      optimizer="fused"),
        config=config.to_dict(), dataset=Dataset(name="tinystories", source="synthetic"), selected={},
        code={"git_sha": "abc", "git_dirty": False}, versions={}, device="cpu"))
    return path


def make_runs(r: Path) -> dict[str, dict[str, Path]]:
    """{experiment: {variant: run dir}} for every report layout entry, one lr and one ablation diverged."""
    return {
        "lr_sweep": {"lr_max~0.001": make_run(r / "lr1", lr=1e-3, final=2.5),
                     "lr_max~0.01": make_run(r / "lr2", lr=1e-2, final=2.0),
                     "lr_max~1": make_run(r / "lr3", lr=1.0, diverged=True)},
        "batch_size": {"batch_size~4": make_run(r / "b4", batch_size=4, final=2.2),
                       "batch_size~64": make_run(r / "b64", batch_size=64, final=2.6)},
        "ablations": {"baseline": make_run(r / "base", final=2.0),
                      "no_rmsnorm": make_run(r / "nonorm", norm="none", diverged=True, non_embedding=990)},
        "ts_main": {"main": make_run(r / "ts", final=1.9)},
        "owt_main": {"main": make_run(r / "owt", final=3.4)},
        "leaderboard": {"main": make_run(r / "lb", final=3.3, budget=5400.0)},
    }
