"""Cutting a corpus file where no special token or GPT-2 pre-token spans the cut: chunks for worker processes
(`plan_chunks`), shards for separate jobs (`shard_bounds`), and reading a byte range as checked UTF-8. Processing
the pieces apart gives exactly the special tokens and pre-tokens of the whole file."""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Sequence

# Chunks of this many bytes (rounded to the next safe cut) bound worker memory and give the log progress.
CHUNK_BYTES = 8 << 20
MIN_CHUNK_BYTES = 1 << 16
_WINDOW = 1 << 20


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
