"""Tokenizer experiments (handout §2.7, `tokenizer_experiments`): compression ratio on sampled documents for each
tokenizer on each corpus (so also on the other dataset's text), encoding throughput and the implied time for the
825 GB Pile, and each vocabulary's longest token; one pandas table the workflow saves as CSV and markdown."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping

import pandas as pd

from cs336lm.tokenization.pretokenize import read_chunk
from cs336lm.tokenization.tokenizer import Tokenizer

PILE_BYTES = 825e9


def sample_documents(path: str | os.PathLike, num_documents: int, seed: int = 0, separator: str = "<|endoftext|>"):
    """`num_documents` documents picked at random byte offsets of a large file without reading all of it: each is
    the text between the first separator after the offset and the next one (or up to 64 KiB)."""
    size = os.path.getsize(path)
    sep = separator.encode("utf-8")
    rng = random.Random(seed)
    docs = []
    with open(path, "rb") as f:
        for _ in range(num_documents * 20):
            if len(docs) == num_documents:
                break
            f.seek(rng.randrange(max(size, 1)))
            window = f.read(1 << 16)
            first = window.find(sep)
            if first < 0:
                continue
            rest = window[first + len(sep) :]
            end = rest.find(sep)
            doc = (rest if end < 0 else rest[:end]).strip()
            if doc:
                docs.append(doc.decode("utf-8", errors="replace"))
    if not docs:  # a file with no separator is one document
        docs = [read_chunk(path, 0, min(size, 1 << 16))]
    return docs


def tokenizer_stats(
    tokenizers: Mapping[str, Tokenizer],
    corpora: Mapping[str, str | os.PathLike],
    num_documents: int = 10,
    seed: int = 0,
    special_token: str = "<|endoftext|>",
    throughput_bytes: int = 1 << 20,
) -> pd.DataFrame:
    """One row per (tokenizer, corpus): sampled `documents`, their `bytes` and `tokens`, `bytes_per_token`, encode
    throughput `mb_per_s` (one process, on `throughput_bytes` of contiguous text), `pile_825gb_hours` at that
    speed, and the tokenizer's longest token (`longest_token`, its `longest_token_bytes`)."""
    rows = []
    for corpus_name, path in corpora.items():
        docs = sample_documents(path, num_documents, seed, special_token)
        size = os.path.getsize(path)
        start = random.Random(seed).randrange(max(size - throughput_bytes, 1))
        bulk = (
            _aligned_slice(path, start, throughput_bytes) if start else read_chunk(path, 0, min(size, throughput_bytes))
        )
        for tok_name, tok in tokenizers.items():
            n_bytes = sum(len(d.encode("utf-8")) for d in docs)
            n_tokens = sum(len(tok.encode(d)) for d in docs)
            tok.encode(bulk[:4096])  # warm the fast path's one-off set-up out of the timing
            t0 = time.perf_counter()
            tok.encode(bulk)
            seconds = time.perf_counter() - t0
            mb_per_s = len(bulk.encode("utf-8")) / 1e6 / max(seconds, 1e-9)
            specials = {s.encode("utf-8") for s in tok.special_tokens}
            longest = max((t for t in tok.vocab.values() if t not in specials), key=lambda t: (len(t), t))
            rows.append(
                {
                    "tokenizer": tok_name,
                    "corpus": corpus_name,
                    "documents": len(docs),
                    "bytes": n_bytes,
                    "tokens": n_tokens,
                    "bytes_per_token": n_bytes / max(n_tokens, 1),
                    "mb_per_s": mb_per_s,
                    "pile_825gb_hours": PILE_BYTES / (mb_per_s * 1e6) / 3600,
                    "longest_token": longest.decode("utf-8", errors="replace"),
                    "longest_token_bytes": len(longest),
                }
            )
    return pd.DataFrame(rows)


def _aligned_slice(path: str | os.PathLike, start: int, length: int) -> str:
    """About `length` bytes of text from `start`, moved forward to a line start so no character is cut."""
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(length)
    data = data[data.find(b"\n") + 1 :]
    return data[: data.rfind(b"\n") + 1].decode("utf-8", errors="replace")
