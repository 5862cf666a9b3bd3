"""Benchmark: the training-step throughput of the leaderboard run's configuration (the modifications its candidates
chose, or before they have chosen, the baseline and every candidate combined), and the tokens that speed trains
within the run's wall-clock budget, beside the throughput table's projection (`python -m cs336lm.experiments.cost`).

    python bench/bench_leaderboard.py --device cuda --json out.json         # the course config, results/
    python bench/bench_leaderboard.py --set model.d_model=32 --set train.batch_size=8 ...   # shrunk, on the CPU

Each configuration runs the real training step (cs336lm.training.step.TrainStep, on the run's fast paths) on random
batches: `--warmup` steps (compilation included), then `--steps` timed ones.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from cs336lm.config import RunConfig  # noqa: E402
from cs336lm.experiments.cost import Machine, budget_projections  # noqa: E402
from cs336lm.experiments.design import Design  # noqa: E402
from cs336lm.lm.model import TransformerLM  # noqa: E402
from cs336lm.training.device import device_name, resolve_device, synchronize  # noqa: E402
from cs336lm.training.step import TrainStep  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def tokens_per_s(cfg: RunConfig, device: torch.device, warmup: int, steps: int) -> float:
    torch.manual_seed(0)
    step = TrainStep(TransformerLM(cfg.model).to(device), cfg, device)
    shape = (cfg.train.batch_size, cfg.model.context_length)

    def run(n: int) -> None:
        for _ in range(n):
            x, y = (torch.randint(0, cfg.model.vocab_size, shape, device=device) for _ in range(2))
            loss, _ = step(x, y, lr=cfg.optim.lr_max)
        loss.item()
        synchronize(device)

    run(warmup)
    start = time.perf_counter()
    run(steps)
    return steps * shape[0] * shape[1] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--machine", type=Path, default=REPO / "profiles/slurm/machine.yaml")
    parser.add_argument("--results", type=Path, default=None, help="results root (default: the config's)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a dotted override of every configuration (e.g. to shrink it for a CPU smoke run)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()
    config = yaml.safe_load(args.configfile.read_text())
    machine = Machine.from_config(yaml.safe_load(args.machine.read_text())["machine"])
    results = args.results or Path(config.get("results_root", "results"))
    device = resolve_device(args.device)
    overrides = {"train.device": args.device, **{k: yaml.safe_load(v) for k, v in
                                                 (item.partition("=")[::2] for item in args.set)}}
    rows = []
    for projection in budget_projections(Design(config), machine, str(results)):
        cfg = RunConfig.from_flat(overrides, base=projection.config)
        measured = tokens_per_s(cfg, device, args.warmup, args.steps)
        train_s = projection.estimate.train_s
        rows.append({"run": projection.run, "configuration": projection.configuration,
                     "budget_s": projection.budget_s, "tokens/s": measured,
                     "tokens_in_budget": int(measured * train_s),
                     "projected tokens/s": projection.tokens_per_s,
                     "projected tokens_in_budget": projection.estimate.tokens})
        print(f"{projection.run}, {projection.configuration} on {device_name(device)}: {measured:,.0f} tokens/s "
              f"measured -> {measured * train_s / 1e9:.3g}B tokens in {train_s / 60:.1f} min of training "
              f"(projected from machine.throughput.{machine.device_class}: {projection.tokens_per_s:,.0f} tokens/s, "
              f"{projection.estimate.tokens / 1e9:.3g}B)")
    if args.json:
        args.json.write_text(json.dumps({"device": device_name(device), "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
