"""Benchmark: peak memory of BPE training on a 1 GB synthetic corpus (bounded, not growing with the corpus).

    python bench/bench_bpe_memory.py [--gb 1] [--vocab-size 10000] [--workers 2] [--cache-dir DIR]

The corpus is the embedded TinyStories-style generator (cs336lm.corpora.synthetic), written once to the cache
directory. Training runs in a fresh child process; its RSS plus its pool workers' is sampled every 20 ms
(bench_bpe.run_child) and the peak reported with the wall time and the unique pre-token count.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_bpe import _ours, run_child  # noqa: E402

from cs336lm.corpora.synthetic import write_stories  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--vocab-size", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()
    cache = Path(args.cache_dir or Path(tempfile.gettempdir()) / "cs336lm-bench")
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"synthetic-{args.gb:g}GB-seed0.txt"
    if not path.exists():
        t = time.perf_counter()
        write_stories(path, int(args.gb * 1e9), seed=0)
        print(f"wrote {path} in {time.perf_counter() - t:.0f} s")
    seconds, vocab, peak_mb, cpu = run_child(_ours, str(path), args.vocab_size, args.workers)
    print(f"{path.name} ({path.stat().st_size / 1e9:.2f} GB), vocab {vocab}, {args.workers} workers: "
          f"{seconds:.0f} s ({path.stat().st_size / 1e6 / seconds:.1f} MB/s, CPU {cpu:.0f} s), "
          f"peak RSS {peak_mb:.0f} MB (training process + workers)")


if __name__ == "__main__":
    main()
