"""Benchmark: encoding throughput (one thread), ours vs tiktoken, on the bench corpus and a 10K vocab trained on it.

    python bench/bench_encode.py [--mb 20] [--vocab-size 10000] [--cache-dir DIR]

tiktoken runs on an Encoding built from the same vocab (ranks = our ids); ids must be identical. The pure-Python
reference encoder is timed on the first 2 MB for scale.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpus import SPECIAL, make_corpus  # noqa: E402

from cs336lm.tokenization import Tokenizer, train_bpe  # noqa: E402
from cs336lm.tokenization.pretokenize import GPT2_PATTERN  # noqa: E402


def trained_tokenizer(corpus: Path, vocab_size: int) -> Tokenizer:
    """Our tokenizer trained on `corpus`, saved beside it so later runs reuse it."""
    out = corpus.with_name(f"{corpus.stem}-bpe{vocab_size}")
    if not (out / "merges.txt").exists():
        Tokenizer(*train_bpe(corpus, vocab_size, [SPECIAL], num_workers=2), [SPECIAL]).save(out)
    return Tokenizer.from_files(out / "vocab.json", out / "merges.txt", [SPECIAL])


def best_of(fn, repeats: int) -> tuple[float, list[int]]:
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def main() -> None:
    import tiktoken

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=20)
    ap.add_argument("--vocab-size", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()
    corpus = make_corpus(args.mb, args.cache_dir)
    text = corpus.read_text(encoding="utf-8")
    mb = len(text.encode("utf-8")) / 1e6
    tok = trained_tokenizer(corpus, args.vocab_size)
    t = time.perf_counter()
    assert tok.fast_path_ok()
    check_s = time.perf_counter() - t
    ranks = {b: i for b, i in tok.token_to_id.items() if b != SPECIAL.encode()}
    enc = tiktoken.Encoding("bench", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=tok.special_to_id)

    tik_s = our_s = float("inf")
    for _ in range(args.repeats):  # interleaved, best of each: the machine is shared and noisy
        t, tik_ids = best_of(lambda: enc.encode(text, allowed_special={SPECIAL}), 1)
        tik_s = min(tik_s, t)
        t, our_ids = best_of(lambda: tok.encode(text), 1)
        our_s = min(our_s, t)
    assert our_ids == tik_ids, "ids differ from tiktoken"
    ref = Tokenizer(tok.vocab, tok.merges, [SPECIAL], backend="python")
    sample = text[:2_000_000]
    ref_s, ref_ids = best_of(lambda: ref.encode(sample), 1)
    assert ref_ids == tok.encode(sample), "reference encoder ids differ"
    ref_mb = len(sample.encode("utf-8")) / 1e6
    print(f"corpus {corpus} ({mb:.1f} MB), vocab {len(tok.vocab)}, {len(our_ids)} tokens, ids identical")
    print(f"tiktoken          : {mb / tik_s:6.2f} MB/s")
    print(f"cs336lm (auto)    : {mb / our_s:6.2f} MB/s   (one-off fast-path check {check_s:.2f} s, not timed)")
    print(f"cs336lm (python)  : {ref_mb / ref_s:6.2f} MB/s   (reference, on the first 2 MB)")
    print(f"ratio ours/tiktoken: {tik_s / our_s:.2f}   python/tiktoken: {(ref_mb / ref_s) / (mb / tik_s):.2f}")


if __name__ == "__main__":
    main()
