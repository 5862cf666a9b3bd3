"""Pre-tokenization (handout §2.4): the GPT-2 split pattern, cutting text at special tokens, and counting the
pre-tokens of a large file (or of one shard of it) in parallel, chunk by chunk (`cs336lm.tokenization.chunks`);
pre-token count files, one per shard, for the sharded workflow."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import regex

from cs336lm.atomic import atomic_write_text
from cs336lm.tokenization.chunks import plan_chunks, read_chunk_bytes, resolve_workers
from cs336lm.tokenization.segments import gather, group_segments, joinable, segment_bounds

log = logging.getLogger(__name__)

# The GPT-2 pattern (tiktoken's `gpt2` pat_str); needs `regex` for \p{L} / \p{N}.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_REGEX = regex.compile(GPT2_PATTERN)

SERIAL_BELOW_BYTES = 1 << 20
_IN_FLIGHT_PER_WORKER = 2
PROGRESS_ABOVE_BYTES = 64 << 20


def special_token_regex(special_tokens: Sequence[str] | None, as_bytes: bool = False) -> regex.Pattern | None:
    """A capturing alternation of the special tokens, longest first, so the longest of overlapping ones wins
    (on UTF-8 bytes with `as_bytes`)."""
    if not special_tokens:
        return None
    ordered = sorted(set(special_tokens), key=lambda s: (-len(s.encode("utf-8")), s))
    if as_bytes:
        return regex.compile(b"(" + b"|".join(regex.escape(s.encode("utf-8")) for s in ordered) + b")")
    return regex.compile("(" + "|".join(regex.escape(s) for s in ordered) + ")")


def split_on_special(text: str, special_re: regex.Pattern | None) -> list[str]:
    """Split `text` into [text, special, text, special, ..., text]: specials at odd indices, pieces may be empty.

    >>> split_on_special("a<|endoftext|>b", special_token_regex(["<|endoftext|>"]))
    ['a', '<|endoftext|>', 'b']
    """
    return [text] if special_re is None else special_re.split(text)


def count_text(text: str, special_re: regex.Pattern | None) -> Counter[str]:
    """Pre-token counts of one text, specials removed (no pre-token, hence no merge, crosses them)."""
    counts: Counter[str] = Counter()
    pieces = split_on_special(text, special_re)
    for piece in pieces[::2]:
        # findall + Counter.update keep the per-match work in C.
        counts.update(GPT2_REGEX.findall(piece))
    return counts


def count_segmented(data: bytes, special_re_bytes: regex.Pattern | None) -> Counter[str]:
    """`count_text` of the UTF-8 text `data` (`special_re_bytes`: `special_token_regex(..., as_bytes=True)`),
    pre-tokenizing each distinct segment (`cs336lm.tokenization.segments`) once: the regex runs over the distinct
    segments, joined in groups of equal count (a third or so of natural text), instead of over all the text."""
    spans = [m.span() for m in special_re_bytes.finditer(data)] if special_re_bytes is not None else []
    starts, ends, is_special = segment_bounds(data, spans)
    starts, ends = starts[~is_special], ends[~is_special]  # specials are cut out: no pre-token crosses them
    first, which = group_segments(data, starts, ends, np.zeros(len(starts), dtype=bool))
    seen = np.bincount(which, minlength=len(first))
    u_start, u_end = starts[first], ends[first]
    x = np.frombuffer(data, dtype=np.uint8)
    can_join = joinable(x, u_start, u_end)
    counts: Counter[str] = Counter()
    for a, b, n in zip(u_start[~can_join].tolist(), u_end[~can_join].tolist(), seen[~can_join].tolist(), strict=True):
        for word in GPT2_REGEX.findall(data[a:b].decode("utf-8")):
            counts[word] += n
    joined = np.flatnonzero(can_join)
    joined = joined[np.argsort(seen[joined], kind="stable")]
    groups = [*np.flatnonzero(np.diff(seen[joined], prepend=-1)).tolist(), len(joined)]  # runs of equal counts
    for g, h in itertools.pairwise(groups):
        members, n = joined[g:h], int(seen[joined[g]])
        block = Counter(GPT2_REGEX.findall(gather(x, u_start[members], u_end[members]).tobytes().decode("utf-8")))
        if n == 1:
            counts.update(block)
        else:
            for word, k in block.items():
                counts[word] += k * n
    return counts


def _count_chunk(args: tuple[str, int, int, tuple[str, ...]]) -> Counter[str]:
    path, start, end, special_tokens = args
    return count_segmented(read_chunk_bytes(path, start, end), special_token_regex(special_tokens, as_bytes=True))


def count_pretokens(
    input_path: str | os.PathLike,
    special_tokens: Sequence[str] = (),
    num_workers: int | None = None,
    byte_range: tuple[int, int] | None = None,
) -> Counter[str]:
    """Count the pre-tokens of a UTF-8 file or of its `byte_range` (a shard from `shard_bounds`), specials
    removed, streaming it chunk by chunk over worker processes.

    Memory follows the number of distinct pre-tokens plus a few chunks in flight, not the file size. The
    result does not depend on `num_workers` or on sharding (every cut lies where no pre-token can span it;
    counts are summed).
    """
    path = str(input_path)
    start, end = byte_range or (0, os.path.getsize(path))
    size = end - start
    workers = resolve_workers(num_workers)
    # Below ~1 MB a process pool costs more (start-up, pickling counts back) than it saves.
    if size < SERIAL_BELOW_BYTES:
        workers = 1
    chunks = plan_chunks(path, special_tokens, workers, byte_range=(start, end))
    jobs = [(path, s, e, tuple(special_tokens)) for s, e in chunks if e > s]
    total: Counter[str] = Counter()
    done = 0
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(jobs) > 1:
            pool = stack.enter_context(ProcessPoolExecutor(max_workers=min(workers, len(jobs))))
            results = _bounded_map(pool, _count_chunk, jobs, _IN_FLIGHT_PER_WORKER * workers)
        else:
            results = map(_count_chunk, jobs)
        for (_, s, e, _), counts in zip(jobs, results, strict=True):
            total.update(counts)
            del counts
            done += e - s
            if size >= PROGRESS_ABOVE_BYTES:
                log.info("pre-tokenized %s: %.0f%% (%d distinct)", Path(path).name, 100 * done / size, len(total))
    return total


def _bounded_map(pool: ProcessPoolExecutor, fn, jobs: list, window: int) -> Iterator:
    """`pool.map(fn, jobs)` in order with at most `window` jobs submitted and not yet consumed (Executor.map
    submits every job at once and holds every result the consumer has not reached)."""
    pending: deque = deque()
    todo = iter(jobs)
    for job in itertools.islice(todo, window):
        pending.append(pool.submit(fn, job))
    while pending:
        result = pending.popleft().result()
        job = next(todo, None)
        if job is not None:
            pending.append(pool.submit(fn, job))
        yield result


# ---- pre-token count files (one per shard; the train_bpe rule sums them) ------------------------------------

_COUNTS_FORMAT = "cs336lm pre-token counts"


def write_counts(path: str | os.PathLike, counts: Mapping[str, int], **about: object) -> None:
    """Write pre-token counts as JSON, keys sorted so the same counts give the same bytes; `about` (e.g. the
    source file, byte range, seconds) is stored beside them. Written atomically."""
    doc = {"format": _COUNTS_FORMAT, "version": 1, **about, "counts": dict(sorted(counts.items()))}
    atomic_write_text(path, json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")


def read_counts(path: str | os.PathLike) -> tuple[Counter[str], dict]:
    """(counts, about) from a file `write_counts` wrote; a clear error for anything else."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable pre-token counts file ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != _COUNTS_FORMAT or not isinstance(doc.get("counts"), dict):
        raise ValueError(f"{path}: not a cs336lm pre-token counts file; rerun the count_pretokens rule that makes it")
    counts = Counter(doc.pop("counts"))
    doc.pop("format")
    return counts, doc
