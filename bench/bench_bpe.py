"""Benchmark: BPE training, ours vs Hugging Face `tokenizers` BpeTrainer (ByteLevel), side by side.

    python bench/bench_bpe.py [--mb 20] [--vocab-size 10000] [--workers 2] [--cache-dir DIR]

The corpus is English text every Python install has: the standard library's docstrings and comments, one
document per module separated by <|endoftext|>, repeated in seeded shuffled order up to --mb megabytes. Each
trainer runs in a fresh child process; we report wall time and the child's peak RSS, and the ratios.
"""

from __future__ import annotations

import argparse
import ast
import multiprocessing as mp
import random
import re
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

SPECIAL = "<|endoftext|>"
_COMMENT = re.compile(r"^\s*#\s?(.*)$", re.M)


def stdlib_documents() -> list[str]:
    """One document per stdlib module: its docstrings and comments, in source order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    docs = []
    for path in sorted(root.rglob("*.py")):
        if "site-packages" in path.parts or "test" in path.parts:
            continue
        source = path.read_text(encoding="utf-8", errors="replace")
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue
        nodes = (n for n in ast.walk(tree) if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef))
        parts = [d for d in (ast.get_docstring(n) for n in nodes) if d]
        parts += [c for c in _COMMENT.findall(source) if c.strip()]
        text = "\n\n".join(parts).replace(SPECIAL, "")
        if text:
            docs.append(text)
    return docs


def make_corpus(mb: float = 20, cache_dir: str | Path | None = None, seed: int = 0) -> Path:
    """Write (once) and return a deterministic corpus of at least `mb` megabytes."""
    cache = Path(cache_dir or Path(tempfile.gettempdir()) / "cs336lm-bench")
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"stdlib-docs-{mb:g}MB-seed{seed}.txt"
    if path.exists():
        return path
    docs = stdlib_documents()
    rng = random.Random(seed)
    target, size = int(mb * 1e6), 0
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        while size < target:
            order = docs[:]
            rng.shuffle(order)
            for doc in order:
                f.write(doc + "\n" + SPECIAL + "\n")
                size += len(doc.encode("utf-8")) + len(SPECIAL) + 2
                if size >= target:
                    break
    tmp.replace(path)
    return path


def _ours(path: str, vocab_size: int, workers: int, out) -> None:
    from cs336lm.tokenization import train_bpe

    t = time.perf_counter()
    vocab, merges = train_bpe(path, vocab_size, [SPECIAL], num_workers=workers)
    out.put((time.perf_counter() - t, len(vocab)))


def _hf(path: str, vocab_size: int, workers: int, out) -> None:
    import os

    os.environ["RAYON_NUM_THREADS"] = str(workers)
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


def run_child(target, *args) -> tuple[float, int, float]:
    """(seconds, result, peak RSS in MB) of `target` in a fresh spawned process; RSS is summed over the process
    and its children (pool workers), sampled every 20 ms."""
    import psutil

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
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
    return seconds, result, peak / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=20)
    ap.add_argument("--vocab-size", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()
    path = make_corpus(args.mb, args.cache_dir)
    print(f"corpus {path} ({path.stat().st_size / 1e6:.1f} MB), vocab {args.vocab_size}, {args.workers} workers")
    hf_s, hf_n, hf_rss = run_child(_hf, str(path), args.vocab_size, args.workers)
    our_s, our_n, our_rss = run_child(_ours, str(path), args.vocab_size, args.workers)
    print(f"HF tokenizers : {hf_s:7.2f} s  peak RSS {hf_rss:6.0f} MB  vocab {hf_n}")
    print(f"cs336lm       : {our_s:7.2f} s  peak RSS {our_rss:6.0f} MB  vocab {our_n}")
    print(f"ratio ours/HF : time {our_s / hf_s:.2f}  peak RSS {our_rss / hf_rss:.2f}")


if __name__ == "__main__":
    main()
