"""Benchmark: BPE training, ours vs Hugging Face `tokenizers` BpeTrainer (ByteLevel), side by side, in rounds.

    python bench/bench_bpe.py [--mb 20] [--vocab-size 10000] [--workers 2] [--rounds 3] [--cache-dir DIR]
    python bench/bench_bpe.py --scaling 20,60,180 [--rounds 1]

The corpus is unrepeated English-like text from this machine (bench/corpus.py: docstrings and comments of every
installed Python file, man pages, /usr/share/doc; no paragraph twice). Both trainers get the same vocabulary size,
special token and worker count (ours: `num_workers`; HF: RAYON_NUM_THREADS). Each run is a fresh child process
(so pool start-up counts); we report wall time and the peak RSS of the child and its workers, round by round
(ours and HF alternate, since the machine is shared), and the ratios of the best and of the medians.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import SPECIAL, describe, make_corpus  # noqa: E402


def _ours(path: str, vocab_size: int, workers: int, out) -> None:
    from cs336lm.tokenization import train_bpe

    t = time.perf_counter()
    vocab, merges = train_bpe(path, vocab_size, [SPECIAL], num_workers=workers)
    out.put((time.perf_counter() - t, len(vocab)))


def _hf(path: str, vocab_size: int, workers: int, out) -> None:
    os.environ["RAYON_NUM_THREADS"] = str(workers)  # before tokenizers starts its thread pool
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    t = time.perf_counter()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[SPECIAL],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train([path], trainer)
    out.put((time.perf_counter() - t, tok.get_vocab_size()))


def run_child(target, *args) -> tuple[float, int, float, float]:
    """(seconds, result, peak RSS in MB, CPU seconds) of `target` in a fresh spawned process: RSS summed over the
    process and its children (pool workers), sampled every 20 ms; CPU is user + sys of the whole process tree
    (its workers are waited for, so they count), start-up included."""
    import resource

    import psutil

    def tree_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    cpu0 = tree_cpu()
    proc = ctx.Process(target=target, args=(*args, out))
    proc.start()
    tree, peak = psutil.Process(proc.pid), 0
    while out.empty():
        if not proc.is_alive() and out.empty():
            raise RuntimeError(f"{target.__name__} failed (exit code {proc.exitcode})")
        try:
            rss = tree.memory_info().rss + sum(c.memory_info().rss for c in tree.children(recursive=True))
        except psutil.Error:
            rss = 0
        peak = max(peak, rss)
        time.sleep(0.02)
    seconds, result = out.get()
    proc.join()
    return seconds, result, peak / 1e6, tree_cpu() - cpu0


def unique_pretokens(path: Path) -> int:
    from cs336lm.tokenization import count_pretokens

    return len(count_pretokens(path, [SPECIAL], num_workers=2))


def compare(path: Path, vocab_size: int, workers: int, rounds: int) -> dict[str, list[tuple[float, float, float]]]:
    """(seconds, peak RSS MB, CPU seconds) per round for "ours" and "hf", alternating which goes first."""
    runs: dict[str, list[tuple[float, float, float]]] = {"ours": [], "hf": []}
    for r in range(rounds):
        order = [("ours", _ours), ("hf", _hf)]
        for name, target in order if r % 2 == 0 else order[::-1]:
            seconds, n, rss, cpu = run_child(target, str(path), vocab_size, workers)
            assert n == vocab_size, (name, n)
            runs[name].append((seconds, rss, cpu))
            print(f"  round {r + 1} {name:4s}: {seconds:7.2f} s  CPU {cpu:7.2f} s  peak RSS {rss:6.0f} MB", flush=True)
    return runs


def summarize(runs: dict[str, list[tuple[float, float, float]]]) -> str:
    ours, hf = runs["ours"], runs["hf"]
    best = min(r[0] for r in ours) / min(r[0] for r in hf)
    median = statistics.median(r[0] for r in ours) / statistics.median(r[0] for r in hf)
    cpu = statistics.median(r[2] for r in ours) / statistics.median(r[2] for r in hf)
    rss = max(r[1] for r in ours) / max(r[1] for r in hf)
    ratios = [o[0] / h[0] for o, h in zip(ours, hf, strict=True)]
    return (
        f"ours/HF wall time: best {best:.2f}, median {median:.2f}, per round {min(ratios):.2f}-{max(ratios):.2f}; "
        f"CPU time (median) {cpu:.2f}; peak RSS {rss:.2f} "
        f"(ours {max(r[1] for r in ours):.0f} MB, HF {max(r[1] for r in hf):.0f} MB)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=20)
    ap.add_argument("--vocab-size", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scaling", default=None, help="comma-separated sizes in MB, e.g. 20,60,180")
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()
    sizes = [float(x) for x in args.scaling.split(",")] if args.scaling else [args.mb]
    table = []
    for mb in sizes:
        path = make_corpus(mb, args.cache_dir)
        print(f"{describe(path)}; {unique_pretokens(path):,} unique pre-tokens")
        print(f"vocab {args.vocab_size}, special {SPECIAL}, {args.workers} workers, {args.rounds} round(s)")
        runs = compare(path, args.vocab_size, args.workers, args.rounds)
        print(summarize(runs))
        table.append((mb, runs))
    if len(table) > 1:
        print("\n| MB | ours s | ours CPU s | ours peak RSS MB | HF s | HF CPU s | HF peak RSS MB |")
        print("|---|---|---|---|---|---|---|")
        for mb, runs in table:
            o, h = min(runs["ours"]), min(runs["hf"])
            print(f"| {mb:g} | {o[0]:.1f} | {o[2]:.1f} | {o[1]:.0f} | {h[0]:.1f} | {h[2]:.1f} | {h[1]:.0f} |")


if __name__ == "__main__":
    main()
