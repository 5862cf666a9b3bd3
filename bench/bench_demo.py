"""Time the embedded demo (`snakemake --profile profiles/demo`) in a temporary directory against its 10-minute target.

Prints the wall clock, then per-rule job counts and summed seconds from the rules' benchmark files
(results-demo/benchmarks/<rule>/...tsv: wall seconds and CPU seconds per job). Usage:

    python bench/bench_demo.py [--keep DIR] [--cores 2]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 600.0


def per_rule_times(benchmarks: Path) -> dict[str, tuple[int, float, float]]:
    """{rule: (jobs, summed wall seconds, summed CPU seconds)} from Snakemake's benchmark TSVs."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for tsv in sorted(benchmarks.rglob("*.tsv")):
        rule = tsv.relative_to(benchmarks).parts[0]
        with open(tsv, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if rows:
            totals[rule][0] += 1
            totals[rule][1] += float(rows[-1]["s"])
            totals[rule][2] += float(rows[-1].get("cpu_time") or 0)
    return {rule: (int(n), wall, cpu) for rule, (n, wall, cpu) in totals.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it (default: a temporary one)")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="cs336lm-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--profile", str(REPO / "profiles" / "demo"), "--cores", str(args.cores)]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        print(result.stdout[-4000:], result.stderr[-4000:], sep="\n", file=sys.stderr)
        print(f"demo FAILED after {wall:.0f} s (exit {result.returncode}); files in {workdir}", file=sys.stderr)
        return 1
    times = per_rule_times(workdir / "results-demo" / "benchmarks")
    print(f"demo wall clock: {wall:.1f} s on {args.cores} cores (target {TARGET_S:.0f} s: "
          f"{'OK' if wall <= TARGET_S else 'OVER'}); load average now {os.getloadavg()[0]:.1f}")
    print(f"{'rule':<20} {'jobs':>4} {'wall s':>9} {'cpu s':>9}")
    for rule, (jobs, rule_wall, cpu) in sorted(times.items(), key=lambda item: -item[1][1]):
        print(f"{rule:<20} {jobs:>4} {rule_wall:>9.1f} {cpu:>9.1f}")
    print(f"{'(sum over jobs)':<20} {sum(t[0] for t in times.values()):>4} "
          f"{sum(t[1] for t in times.values()):>9.1f} {sum(t[2] for t in times.values()):>9.1f}")
    print(f"outputs: {workdir / 'results-demo'}")
    return 0 if wall <= TARGET_S else 2


if __name__ == "__main__":
    sys.exit(main())
