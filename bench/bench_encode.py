"""Benchmark: encoding throughput, one thread, ours vs tiktoken, on documents separated by <|endoftext|>.

    python bench/bench_encode.py [--mb 5] [--vocab-size 10000] [--repeats 5] [--cache-dir DIR]

Text: the first --mb megabytes of the unrepeated bench corpus (bench/corpus.py), cut into documents at every
third paragraph break, with "<|endoftext|>" between them (thousands of separators). The tokenizer is our 10K BPE
trained on the 20 MB corpus; tiktoken runs an Encoding built from the same vocab (ranks = our ids) and encodes
with allowed_special={"<|endoftext|>"}. Both warmed up, then best-of-N against best-of-N, interleaved (the
machine is shared); ids must be identical. `Tokenizer.encode` is what users call; the pure-Python reference
encoder is timed on the first 1 MB for scale.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import SPECIAL, make_corpus  # noqa: E402

from cs336lm.tokenization import Tokenizer, train_bpe  # noqa: E402
from cs336lm.tokenization.pretokenize import GPT2_PATTERN  # noqa: E402


def trained_tokenizer(corpus: Path, vocab_size: int) -> Tokenizer:
    """Our tokenizer trained on `corpus`, saved beside it so later runs reuse it."""
    out = corpus.with_name(f"{corpus.stem}-bpe{vocab_size}")
    if not (out / "merges.txt").exists():
        Tokenizer(*train_bpe(corpus, vocab_size, [SPECIAL], num_workers=2), [SPECIAL]).save(out)
    return Tokenizer.from_files(out / "vocab.json", out / "merges.txt", [SPECIAL])


def documents_text(corpus: Path, mb: float) -> str:
    """The first `mb` MB of the corpus with a separator at every third paragraph break."""
    with open(corpus, encoding="utf-8") as f:
        text = f.read(int(mb * 1e6))
    text = text[: text.rfind("\n") + 1]
    count = iter(range(1 << 62))
    return re.sub(r"\n\n", lambda m: f"\n{SPECIAL}\n" if next(count) % 3 == 2 else m.group(), text)


def timed(fn) -> tuple[float, float, list[int]]:
    """(wall seconds, CPU seconds of this process, result): both run in this one thread, so on a shared machine
    the CPU time is the steadier measure of the two."""
    t, c = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - t, time.process_time() - c, result


def main() -> None:
    import tiktoken

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=5)
    ap.add_argument("--vocab-size", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()
    corpus = make_corpus(20, args.cache_dir)
    text = documents_text(corpus, args.mb)
    mb = len(text.encode("utf-8")) / 1e6
    tok = trained_tokenizer(corpus, args.vocab_size)
    ranks = {b: i for b, i in tok.token_to_id.items() if b != SPECIAL.encode()}
    enc = tiktoken.Encoding("bench", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=tok.special_to_id)

    ours_fn = lambda: tok.encode(text)  # noqa: E731
    tik_fn = lambda: enc.encode(text, allowed_special={SPECIAL})  # noqa: E731
    ours_fn(), tik_fn()  # warm-up: builds our fast path (its one-off check) and both caches
    ours_s, tik_s, ours_cpu, tik_cpu = [], [], [], []
    for r in range(args.repeats):  # interleaved, alternating who goes first
        runs = [("ours", ours_fn, ours_s, ours_cpu), ("tiktoken", tik_fn, tik_s, tik_cpu)]
        for name, fn, times, cpus in runs[:: 1 if r % 2 else -1]:
            seconds, cpu, ids = timed(fn)
            times.append(seconds)
            cpus.append(cpu)
            if name == "ours":
                our_ids = ids
            else:
                tik_ids = ids
    assert our_ids == tik_ids, "ids differ from tiktoken"
    reference = Tokenizer(tok.vocab, tok.merges, [SPECIAL], backend="python")
    sample = text[:1_000_000]
    ref_s, _, ref_ids = timed(lambda: reference.encode(sample))
    assert ref_ids == tok.encode(sample), "reference encoder ids differ"
    print(f"{mb:.1f} MB, {text.count(SPECIAL)} separators, vocab {len(tok.vocab)}, {len(our_ids)} tokens, "
          f"ids identical; best of {args.repeats} each, one thread")
    print(f"tiktoken          : {mb / min(tik_s):6.2f} MB/s best, {mb / statistics.median(tik_s):6.2f} median")
    print(f"cs336lm encode    : {mb / min(ours_s):6.2f} MB/s best, {mb / statistics.median(ours_s):6.2f} median")
    print(f"cs336lm (python)  : {len(sample.encode()) / 1e6 / ref_s:6.2f} MB/s (from-scratch reference, first 1 MB)")
    ratios = sorted(t / o for o, t in zip(ours_s, tik_s, strict=True))
    print(f"ours/tiktoken speed, wall: best-vs-best {min(tik_s) / min(ours_s):.2f}, "
          f"per round {ratios[0]:.2f}-{ratios[-1]:.2f}")
    cpu_ratios = sorted(t / o for o, t in zip(ours_cpu, tik_cpu, strict=True))
    print(f"ours/tiktoken speed, CPU:  best-vs-best {min(tik_cpu) / min(ours_cpu):.2f}, "
          f"per round {cpu_ratios[0]:.2f}-{cpu_ratios[-1]:.2f}")


if __name__ == "__main__":
    main()
