"""Benchmark: `tokenize_file` on a ~100 MB text file: wall time, CPU use of its process tree, RSS over the run.

    python bench/bench_tokenize_file.py [--mb 100] [--workers 2] [--cache-dir DIR]

Uses the bench corpus (see bench_bpe.py) and the 10K vocab bench_encode.py trains on it. RSS of the process and
of its pool workers is sampled every 0.2 s; "flat" means the samples at 25/50/75/100% of the run stay level
rather than growing with the bytes processed. CPU use is user+sys of the process and its (reaped) children over
wall time x the cores this process may use.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from bench_encode import trained_tokenizer  # noqa: E402
from corpus import make_corpus  # noqa: E402

from cs336lm.tokenization import tokenize_file  # noqa: E402

SAMPLE_S = 0.2


def cpu_seconds() -> float:
    """user + sys of this process and of its children that have been waited for."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def sample_rss(done: threading.Event, samples: list[tuple[float, int, int]]) -> None:
    """Append (seconds since start, parent RSS, summed children RSS) every SAMPLE_S until `done`."""
    me, t0 = psutil.Process(), time.perf_counter()
    while not done.is_set():
        try:
            kids = 0
            for c in me.children(recursive=True):
                try:
                    kids += c.memory_info().rss
                except psutil.Error:  # a worker exiting
                    pass
            samples.append((time.perf_counter() - t0, me.memory_info().rss, kids))
        except psutil.Error:
            pass
        done.wait(SAMPLE_S)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()
    tok = trained_tokenizer(make_corpus(20, args.cache_dir), 10_000)
    corpus = make_corpus(args.mb, args.cache_dir)
    cores = len(os.sched_getaffinity(0))
    samples: list[tuple[float, int, int]] = []
    done = threading.Event()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tokens.npy"
        sampler = threading.Thread(target=sample_rss, args=(done, samples), daemon=True)
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        sampler.start()
        n = tokenize_file(corpus, tok, out, num_workers=args.workers)
        wall = time.perf_counter() - t0
        cpu = cpu_seconds() - cpu0  # the pool is joined by now, so its workers' time is in RUSAGE_CHILDREN
        done.set()
        sampler.join()
        assert len(np.load(out, mmap_mode="r")) == n
    mb = corpus.stat().st_size / 1e6
    print(f"tokenize_file {mb:.0f} MB, {args.workers} workers: {wall:.1f} s ({mb / wall:.1f} MB/s), {n} tokens")
    print(f"CPU (process tree, user+sys): {cpu:.1f} s = {100 * cpu / (wall * cores):.0f}% of {cores} cores x wall")
    peak = max(samples, key=lambda s: s[1] + s[2])
    print(f"peak RSS (parent + workers) {(peak[1] + peak[2]) / 1e6:.0f} MB at {peak[0]:.1f} s ({len(samples)} samples)")
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        t, parent, kids = min(samples, key=lambda s: abs(s[0] - frac * wall))
        print(
            f"  RSS at {100 * frac:3.0f}% ({t:5.1f} s): parent {parent / 1e6:4.0f} MB"
            f" + workers {kids / 1e6:4.0f} MB = {(parent + kids) / 1e6:4.0f} MB"
        )


if __name__ == "__main__":
    main()
