"""Facts about a dataset and its tokenizer read from the results tree: bytes per token of the validation split
(for bits per byte), the BPE training's Snakemake benchmark (time, peak memory) and phase timings, the vocabulary."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


def bytes_per_token(text_path: str | os.PathLike, tokens_path: str | os.PathLike) -> float:
    """UTF-8 bytes of a corpus split per token of its token file (both cover the same text)."""
    tokens = np.load(tokens_path, mmap_mode="r")
    return os.path.getsize(text_path) / max(len(tokens), 1)


def bits_per_byte(loss_nats_per_token: float, text_bytes_per_token: float) -> float:
    """Convert a per-token loss in nats to bits per byte of text, which compares across tokenizers."""
    return loss_nats_per_token / math.log(2) / text_bytes_per_token


@dataclass(frozen=True)
class JobBenchmark:
    """One Snakemake `benchmark:` file: wall-clock seconds and peak resident memory of the job's process tree."""

    seconds: float
    max_rss_bytes: float | None


def read_benchmark(path: str | os.PathLike) -> JobBenchmark:
    """The last line of a benchmark TSV: `s` in seconds, `max_rss` in MiB summed over the job's processes at each
    sample ("NA" when no sample was taken, as for very short jobs)."""
    row = pd.read_csv(path, sep="\t").iloc[-1]
    rss = pd.to_numeric(row.get("max_rss"), errors="coerce")
    return JobBenchmark(float(row["s"]), None if pd.isna(rss) else float(rss) * 2**20)


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_vocab(vocab_path: str | os.PathLike, merges_path: str | os.PathLike,
               special_tokens: list[str]) -> dict[int, bytes]:
    """{id: token bytes} of a GPT-2-format tokenizer, without its special tokens (they are not learned merges)."""
    from cs336lm.tokenization import Tokenizer

    specials = {token.encode("utf-8") for token in special_tokens}
    vocab = Tokenizer.from_files(vocab_path, merges_path).vocab
    return {i: token for i, token in vocab.items() if token not in specials}


def longest_tokens(vocab: dict[int, bytes], count: int = 1) -> list[bytes]:
    """The `count` longest tokens (ties: the byte-wise larger first, so the answer is deterministic)."""
    return sorted(vocab.values(), key=lambda t: (len(t), t), reverse=True)[:count]


def describe_token(token: bytes) -> str:
    """What a (long) token is and whether it makes sense, in words: a whole word, text, or bytes that are not clean
    UTF-8. BPE merges whatever byte run is most frequent, so every answer says in what sense it makes sense."""
    as_compression = "it makes sense for BPE, which merges the most frequent byte runs whether or not they are words"
    try:
        text = token.decode("utf-8")
    except UnicodeDecodeError:
        return f"not valid UTF-8 on its own, a run of bytes the corpus repeats (such as mojibake), not a word; " \
               f"{as_compression}"
    stripped = text.strip()
    if stripped.isalpha() and stripped.isascii():
        if text.startswith(" "):
            return "a whole word with its leading space; it makes sense: a frequent word becomes a single token, as " \
                   "BPE should make it"
        return "a piece of a word (letters without a leading space); it makes sense: BPE merges the frequent middles " \
               "and ends of words"
    if not text.isascii():
        return f"non-ASCII text (repeated non-English or mis-encoded text in the corpus), not a word; {as_compression}"
    if not stripped:
        return f"a run of whitespace (indentation or blank lines repeated in the corpus); {as_compression}"
    return f"a repeated non-word string of the corpus (punctuation, markup or numbers); {as_compression}"
