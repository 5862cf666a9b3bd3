"""Benchmark: `tokenize_file` on a ~100 MB text file: wall time, CPU utilisation over the cores, peak RSS.

    python bench/bench_tokenize_file.py [--mb 100] [--workers 2] [--cache-dir DIR]

Uses the bench corpus (see bench_bpe.py) and the 10K vocab bench_encode.py trains on it; RSS is summed over the
process and its pool workers, sampled every 50 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from bench_bpe import make_corpus  # noqa: E402
from bench_encode import trained_tokenizer  # noqa: E402

from cs336lm.tokenizer import tokenize_file  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()
    tok = trained_tokenizer(make_corpus(20, args.cache_dir), 10_000)
    corpus = make_corpus(args.mb, args.cache_dir)
    me = psutil.Process()
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                samples.append(me.memory_info().rss + sum(c.memory_info().rss for c in me.children(recursive=True)))
            except psutil.Error:
                pass
            time.sleep(0.05)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tokens.npy"
        sampler = threading.Thread(target=sample, daemon=True)
        cpu0, t0 = psutil.cpu_times(), time.perf_counter()
        sampler.start()
        n = tokenize_file(corpus, tok, out, num_workers=args.workers)
        wall = time.perf_counter() - t0
        cpu1 = psutil.cpu_times()
        done.set()
        sampler.join()
        busy = sum(getattr(cpu1, f) - getattr(cpu0, f) for f in ("user", "system", "nice"))
        assert len(np.load(out, mmap_mode="r")) == n
    mb = corpus.stat().st_size / 1e6
    print(f"tokenize_file {mb:.0f} MB, {args.workers} workers: {wall:.1f} s ({mb / wall:.1f} MB/s), {n} tokens")
    print(f"machine CPU busy {100 * busy / (wall * os.cpu_count()):.0f}% of {os.cpu_count()} cores (all processes)")
    print(f"peak RSS (parent + workers) {max(samples) / 1e6:.0f} MB; at start {samples[0] / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
