"""Tokenizer experiments (handout §2.7, `tokenizer_experiments`): compression ratio on sampled documents for each
tokenizer on each corpus (so also on the other dataset's text), encoding throughput of the default path and of the
from-scratch encoder, both on the same text of at least THROUGHPUT_BYTES (or the whole file when it is smaller),
with the implied time for the 825 GB Pile, and each vocabulary's longest token; one pandas table the workflow saves
as CSV and markdown."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping

import pandas as pd

from cs336lm.tokenization.chunks import read_chunk
from cs336lm.tokenization.tokenizer import Tokenizer

PILE_BYTES = 825e9
THROUGHPUT_BYTES = 1_000_000  # at least 1 MB of text per throughput measurement


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
    throughput_bytes: int = THROUGHPUT_BYTES,
) -> pd.DataFrame:
    """One row per (tokenizer, corpus): sampled `documents`, their `bytes` and `tokens`, `bytes_per_token`; encode
    throughput, as `mb_per_s`, of the path users get (`encoder`: "tiktoken core" when the fast path applies, else
    "python") and, as `mb_per_s_python`, of the from-scratch encoder, each with the implied hours for the 825 GB
    Pile. Both encode the same contiguous text: at least `throughput_bytes` from a random line start, or the whole
    file when it is no larger (`throughput_bytes` and `throughput_text` in the row say which). Then the tokenizer's
    longest token (`longest_token`, its `longest_token_bytes`). One process, one thread."""
    rows = []
    for corpus_name, path in corpora.items():
        docs = sample_documents(path, num_documents, seed, special_token)
        size = os.path.getsize(path)
        whole = size <= throughput_bytes
        # A start at least 2 × throughput_bytes before the end leaves a full slice after the line it skips.
        start = random.Random(seed).randrange(max(size - 2 * throughput_bytes, 0) + 1)
        bulk = read_chunk(path, 0, size) if whole else _aligned_slice(path, start, throughput_bytes)
        bulk_bytes = len(bulk.encode("utf-8"))
        for tok_name, tok in tokenizers.items():
            n_bytes = sum(len(d.encode("utf-8")) for d in docs)
            n_tokens = sum(len(tok.encode(d)) for d in docs)
            reference = Tokenizer(tok.vocab, tok.merges, tok.special_tokens, backend="python")
            mb_per_s = _throughput(tok, bulk)
            mb_per_s_python = _throughput(reference, bulk)
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
                    "encoder": "tiktoken core" if tok.fast_path_ok() else "python",
                    "throughput_bytes": bulk_bytes,
                    "throughput_text": "whole file" if whole else "slice",
                    "mb_per_s": mb_per_s,
                    "pile_825gb_hours": PILE_BYTES / (mb_per_s * 1e6) / 3600,
                    "mb_per_s_python": mb_per_s_python,
                    "pile_825gb_hours_python": PILE_BYTES / (mb_per_s_python * 1e6) / 3600,
                    "longest_token": longest.decode("utf-8", errors="replace"),
                    "longest_token_bytes": len(longest),
                }
            )
    return pd.DataFrame(rows)


def _throughput(tok: Tokenizer, text: str) -> float:
    """MB/s of `tok.encode(text)`, after a warm-up that builds the fast path and fills the reference's cache."""
    tok.encode(text[:4096])
    t0 = time.perf_counter()
    tok.encode(text)
    return len(text.encode("utf-8")) / 1e6 / max(time.perf_counter() - t0, 1e-9)


def _aligned_slice(path: str | os.PathLike, start: int, length: int) -> str:
    """At least `length` bytes of text (when the file holds them after `start`) from the first line start at or
    after `start` to the end of a line, so that no character is cut."""
    with open(path, "rb") as f:
        if start:
            f.seek(start - 1)
            f.readline()  # skip to a line start; a start right after a newline skips nothing
        data = f.read(length)
        if not data.endswith(b"\n"):
            data += f.readline()
    return data.decode("utf-8", errors="replace")
