"""The sharded BPE workflow's two jobs (DESIGN §4): `count_shard` counts the pre-tokens of one byte-range shard
of a corpus into a counts file (the count_pretokens rule, one CPU job per shard); `train_from_counts` sums the
shards' counts, runs the merge loop, saves the tokenizer and writes `train_stats.json` (the train_bpe rule)."""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from cs336lm.atomic import atomic_write_text
from cs336lm.tokenization.bpe import train_bpe_from_counts
from cs336lm.tokenization.chunks import shard_bounds
from cs336lm.tokenization.gpt2_format import save_gpt2_files
from cs336lm.tokenization.pretokenize import count_pretokens, read_counts, write_counts

log = logging.getLogger(__name__)


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory so far of this process and of its largest waited-for child (a pool worker), in MB."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"process": me.ru_maxrss * scale / 1e6, "largest_worker": kids.ru_maxrss * scale / 1e6}


def count_shard(
    text_path: str | os.PathLike,
    shard: int,
    num_shards: int,
    special_tokens: Sequence[str],
    out_path: str | os.PathLike,
    num_workers: int | None = None,
) -> Counter[str]:
    """Count the pre-tokens of shard `shard` of `num_shards` (`shard_bounds`) and write them to `out_path`."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} is outside 0..{num_shards - 1}")
    start_time = time.perf_counter()
    bounds = shard_bounds(text_path, num_shards, special_tokens)
    byte_range = (bounds[shard], bounds[shard + 1])
    counts = count_pretokens(text_path, special_tokens, num_workers, byte_range=byte_range)
    seconds = time.perf_counter() - start_time
    log.info("shard %d/%d of %s, bytes %d-%d: %d distinct pre-tokens in %.1f s",
             shard, num_shards, text_path, *byte_range, len(counts), seconds)
    write_counts(out_path, counts, source=Path(text_path).name, shard=shard, num_shards=num_shards,
                 byte_range=list(byte_range), seconds=round(seconds, 3), peak_rss_mb=peak_rss_mb())
    return counts


def train_from_counts(
    counts_paths: Sequence[str | os.PathLike],
    vocab_size: int,
    special_tokens: Sequence[str],
    out_dir: str | os.PathLike,
    stats_path: str | os.PathLike,
) -> dict:
    """Sum the shards' counts, train, save vocab.json + merges.txt into `out_dir`, write the stats; returns them.

    Stats (for the report): wall time per phase (pre-token counting: each shard job's seconds, their sum and the
    longest; merging; saving), peak RSS, unique pre-tokens, the longest token (as text and in bytes), shards.
    """
    start = time.perf_counter()
    total: Counter[str] = Counter()
    shards = []
    for path in counts_paths:
        counts, about = read_counts(path)
        total.update(counts)
        shards.append(about)
    read_s = time.perf_counter() - start
    vocab, merges = train_bpe_from_counts(total, vocab_size, special_tokens, source=", ".join(map(str, counts_paths)))
    merge_s = time.perf_counter() - start - read_s
    save_gpt2_files(vocab, merges, out_dir)
    save_s = time.perf_counter() - start - read_s - merge_s
    specials = {s.encode("utf-8") for s in special_tokens}
    longest = max((t for t in vocab.values() if t not in specials), key=lambda t: (len(t), t))
    shard_seconds = [a.get("seconds", 0.0) for a in shards]
    stats = {
        "num_shards": len(shards),
        "unique_pretokens": len(total),
        "pretokens": sum(total.values()),
        "vocab_size": len(vocab),
        "merges": len(merges),
        "seconds": {
            "counting_total": round(sum(shard_seconds), 3),
            "counting_longest_shard": round(max(shard_seconds, default=0.0), 3),
            "reading_counts": round(read_s, 3),
            "merging": round(merge_s, 3),
            "saving": round(save_s, 3),
        },
        "peak_rss_mb": {
            "counting_largest_shard_job": max((a.get("peak_rss_mb", {}).get("process", 0.0) for a in shards),
                                              default=0.0),
            "counting_largest_worker": max((a.get("peak_rss_mb", {}).get("largest_worker", 0.0) for a in shards),
                                           default=0.0),
            "training": peak_rss_mb()["process"],
        },
        "longest_token": {"text": longest.decode("utf-8", errors="replace"), "bytes": len(longest)},
        "shards": shards,
    }
    atomic_write_text(stats_path, json.dumps(stats, indent=1, ensure_ascii=False) + "\n")
    log.info("trained %d merges on %d unique pre-tokens from %d shard(s): %s", len(merges), len(total),
             len(shards), stats["seconds"])
    return stats
