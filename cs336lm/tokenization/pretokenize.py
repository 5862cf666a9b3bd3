"""Pre-tokenization (handout §2.4): the GPT-2 split pattern, cutting text at special tokens, and counting
pre-tokens of a large file (or of one shard of it) in parallel, chunk by chunk, cut where no special token or
pre-token spans a cut; pre-token count files, one per shard, for the sharded workflow."""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import logging
import os
import re
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import regex

from cs336lm.atomic import atomic_write_text
from cs336lm.tokenization.segments import gather, group_segments, joinable, segment_bounds

log = logging.getLogger(__name__)

# The GPT-2 pattern (tiktoken's `gpt2` pat_str); needs `regex` for \p{L} / \p{N}.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_REGEX = regex.compile(GPT2_PATTERN)

# Chunks of this many bytes (rounded to the next safe cut) bound worker memory and give the log progress.
CHUNK_BYTES = 8 << 20
MIN_CHUNK_BYTES = 1 << 16
_WINDOW = 1 << 20
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


# After a visible ASCII character, a line break starts a new pre-token whatever follows, and the pre-tokens
# before it end where they would in the whole text: the pattern's only lookahead, (?!\S), sits in whitespace
# runs, and the run starting at the break is matched the same from there on. (A cut *after* a newline is not
# safe: "a\n\nx" is ["a", "\n", "\n", "x"] but "a\n\n" alone ends in "\n\n".)
_LINE_BREAK_CUT = re.compile(rb"(?<=[!-~])[\r\n]")


def _special_occurrences(window: bytes, specials: Sequence[bytes]) -> tuple[list[int], list[int]]:
    """Start offsets of every (possibly overlapping) special-token occurrence in `window`, ascending, and the
    running maximum of their ends (so ends[i] is the furthest any occurrence starting at or before starts[i]
    reaches)."""
    found: dict[int, int] = {}
    for s in specials:
        i = window.find(s)
        while i >= 0:
            found[i] = max(found.get(i, 0), i + len(s))
            i = window.find(s, i + 1)
    starts = sorted(found)
    ends, reach = [], 0
    for q in starts:
        reach = max(reach, found[q])
        ends.append(reach)
    return starts, ends


def _straddled(p: int, starts: list[int], ends: list[int]) -> bool:
    """Whether an occurrence starting before `p` ends after it."""
    k = bisect.bisect_left(starts, p)
    return k > 0 and ends[k - 1] > p


def find_chunk_boundaries(
    path: str | os.PathLike,
    chunk_bytes: int,
    special_tokens: Sequence[str] = (),
    byte_range: tuple[int, int] | None = None,
) -> list[int]:
    """Byte offsets [start, ..., end] cutting the file (or its `byte_range`, whose ends must be safe cuts) about
    every `chunk_bytes` so that processing the chunks apart gives exactly the special tokens and pre-tokens of the
    whole.

    A cut is never inside an occurrence of *any* special token (overlapping ones included, e.g. "<|eot|>" and
    "<|eot|><|eot|>"): then the longest-first split of the whole text is the splits of the two sides joined.
    Preferred cuts sit right before a special token (a document boundary). Where the window after the target
    holds no usable one, the cut goes right before a line break that follows a visible ASCII character (see
    `_LINE_BREAK_CUT`). A file with neither after some point gets no more cuts: its rest is one chunk.
    """
    start, end = byte_range or (0, os.path.getsize(path))
    bounds = [start]
    with _CutFinder(path, end, special_tokens) as finder:
        target = start + chunk_bytes
        while target < end:
            cut = finder.next_cut(bounds[-1], target)
            if cut is None:
                break
            bounds.append(cut)
            target = cut + chunk_bytes
    bounds.append(end)
    return bounds


def shard_bounds(path: str | os.PathLike, num_shards: int, special_tokens: Sequence[str] = ()) -> list[int]:
    """`num_shards` + 1 byte offsets splitting a file into shards for separate jobs: shard k is
    [bounds[k], bounds[k+1]), cut at the first safe cut (see `find_chunk_boundaries`) at or after k/num_shards of
    the file. Every job computes the same list (it reads only a window at each cut), so shards tile the file; a
    shard may be empty when the file has no safe cut in its stretch."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    size = os.path.getsize(path)
    bounds = [0]
    with _CutFinder(path, size, special_tokens) as finder:
        for k in range(1, num_shards):
            target = k * size // num_shards
            cut = finder.next_cut(bounds[-1], target) if target > bounds[-1] else bounds[-1]
            bounds.append(size if cut is None else cut)
    bounds.append(size)
    return bounds


class _CutFinder:
    """Finds safe cuts in an open file below `end` (the file's size or a safe cut)."""

    def __init__(self, path: str | os.PathLike, end: int, special_tokens: Sequence[str]):
        self.end = end
        self.specials = sorted({s.encode("utf-8") for s in special_tokens if s}, key=len, reverse=True)
        self.longest = len(self.specials[0]) if self.specials else 0
        self.window_bytes = max(_WINDOW, 4 * self.longest)
        self.file = open(path, "rb")  # closed by __exit__

    def __enter__(self) -> _CutFinder:
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def next_cut(self, last: int, target: int) -> int | None:
        """The first safe cut at or after `target` (> `last`, itself a safe cut), or None before `end`."""
        f, end, longest = self.file, self.end, self.longest
        pos = max(target, last + 1)
        while pos < end:
            # Read from `longest` bytes back, so an occurrence straddling a cut near `pos` is seen (before `last`
            # nothing straddles anything after it: it would straddle `last`).
            ws = max(last, pos - longest)
            f.seek(ws)
            window = f.read(min(self.window_bytes, end - ws))
            at_end = ws + len(window) >= end
            # An occurrence may run past the window's end unseen, so only cuts `longest` bytes before it are judged.
            limit = ws + len(window) - (0 if at_end else longest)
            starts, ends = _special_occurrences(window, self.specials)
            for q in starts:
                p = ws + q
                if pos <= p < limit and not _straddled(q, starts, ends):
                    return p
            for m in _LINE_BREAK_CUT.finditer(window, pos - ws, max(limit - ws, pos - ws)):
                if not _straddled(m.start(), starts, ends):
                    return ws + m.start()
            if at_end:
                return None
            pos = limit
        return None


def read_chunk(path: str | os.PathLike, start: int, end: int) -> str:
    """The text of bytes [start, end) of a UTF-8 file; a clear error names the file and offset otherwise."""
    return read_chunk_bytes(path, start, end).decode("utf-8")


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


def read_chunk_bytes(path: str | os.PathLike, start: int, end: int) -> bytes:
    """Bytes [start, end) of a file, checked to be UTF-8 (a clear error names the file and offset otherwise)."""
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not valid UTF-8 at byte {start + e.start}: {e.reason}") from None
    return data


def _count_chunk(args: tuple[str, int, int, tuple[str, ...]]) -> Counter[str]:
    path, start, end, special_tokens = args
    return count_segmented(read_chunk_bytes(path, start, end), special_token_regex(special_tokens, as_bytes=True))


def plan_chunks(
    path: str | os.PathLike,
    special_tokens: Sequence[str],
    num_workers: int,
    max_chunk_bytes: int | None = None,
    byte_range: tuple[int, int] | None = None,
) -> list[tuple[int, int]]:
    """(start, end) byte ranges of the file (or of `byte_range`): about 4 per worker (load balance), about
    `max_chunk_bytes` (default CHUNK_BYTES) at most (memory, progress). Each runs on to the next safe cut
    (`find_chunk_boundaries`), so may be longer."""
    start, end = byte_range or (0, os.path.getsize(path))
    size = end - start
    chunk_bytes = max(MIN_CHUNK_BYTES, min(max_chunk_bytes or CHUNK_BYTES, size // (4 * num_workers) + 1))
    bounds = find_chunk_boundaries(path, chunk_bytes, special_tokens, (start, end))
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def resolve_workers(num_workers: int | None) -> int:
    """`None` means every core this process may use."""
    if num_workers is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return os.cpu_count() or 1
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1 or None, got {num_workers}")
    return num_workers


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


def iter_pretokens(text: str) -> Iterator[str]:
    """The GPT-2 pre-tokens of `text` (no special-token handling)."""
    return (m.group() for m in GPT2_REGEX.finditer(text))
