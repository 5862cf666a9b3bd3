"""Pre-tokenization (handout §2.4): the GPT-2 split pattern, cutting text at special tokens, and counting
pre-tokens of a large file in parallel, chunk by chunk, with chunk boundaries on a special token."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import regex

log = logging.getLogger(__name__)

# The GPT-2 pattern (tiktoken's `gpt2` pat_str); needs `regex` for \p{L} / \p{N}.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_REGEX = regex.compile(GPT2_PATTERN)

# Chunks of this many bytes (rounded to the next special token) bound worker memory and give the log progress.
CHUNK_BYTES = 8 << 20
_WINDOW = 1 << 20
SERIAL_BELOW_BYTES = 1 << 20
PROGRESS_ABOVE_BYTES = 64 << 20


def special_token_regex(special_tokens: Sequence[str] | None) -> regex.Pattern | None:
    """A capturing alternation of the special tokens, longest first, so the longest of overlapping ones wins."""
    if not special_tokens:
        return None
    ordered = sorted(set(special_tokens), key=lambda s: (-len(s), s))
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


def find_chunk_boundaries(path: str | os.PathLike, chunk_bytes: int, special_tokens: Sequence[str] = ()) -> list[int]:
    """Byte offsets [0, ..., size] cutting the file about every `chunk_bytes` where no pre-token can span the cut.

    With special tokens a cut lands on the start of the first one (a document boundary); without, after a
    newline followed by a visible ASCII character (a newline never joins the next non-space pre-token).
    """
    size = os.path.getsize(path)
    cut_re = (
        re.compile(re.escape(special_tokens[0].encode("utf-8"))) if special_tokens else re.compile(rb"(?<=\n)[!-~]")
    )
    bounds = [0]
    with open(path, "rb") as f:
        target = chunk_bytes
        while target < size:
            f.seek(target)
            found = None
            window_start = target
            while found is None:
                # Overlapping windows so a cut marker straddling two reads is still found.
                f.seek(window_start)
                window = f.read(_WINDOW)
                if not window:
                    break
                m = cut_re.search(window, 1 if window_start == bounds[-1] else 0)
                if m:
                    found = window_start + m.start()
                elif len(window) < _WINDOW:
                    break
                else:
                    window_start += _WINDOW - 64
            if found is None:
                break
            bounds.append(found)
            target = found + chunk_bytes
    bounds.append(size)
    return bounds


def read_chunk(path: str | os.PathLike, start: int, end: int) -> str:
    """The text of bytes [start, end) of a UTF-8 file; a clear error names the file and offset otherwise."""
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not valid UTF-8 at byte {start + e.start}: {e.reason}") from None


def _count_chunk(args: tuple[str, int, int, tuple[str, ...]]) -> Counter[str]:
    path, start, end, special_tokens = args
    return count_text(read_chunk(path, start, end), special_token_regex(special_tokens))


def plan_chunks(path: str | os.PathLike, special_tokens: Sequence[str], num_workers: int) -> list[tuple[int, int]]:
    """(start, end) byte ranges: about 4 per worker (load balance), at most CHUNK_BYTES each (memory, progress)."""
    size = os.path.getsize(path)
    chunk_bytes = max(1 << 16, min(CHUNK_BYTES, size // (4 * num_workers) + 1))
    bounds = find_chunk_boundaries(path, chunk_bytes, special_tokens)
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
    input_path: str | os.PathLike, special_tokens: Sequence[str] = (), num_workers: int | None = None
) -> Counter[str]:
    """Count the pre-tokens of a UTF-8 file (specials removed), streaming it chunk by chunk over worker processes.

    Memory follows the number of distinct pre-tokens plus a few chunks in flight, not the file size. The
    result does not depend on `num_workers` (every cut lies where no pre-token can span it; counts are summed).
    """
    path = str(input_path)
    size = os.path.getsize(path)
    workers = resolve_workers(num_workers)
    # Below ~1 MB a process pool costs more (start-up, pickling counts back) than it saves.
    if size < SERIAL_BELOW_BYTES:
        workers = 1
    chunks = plan_chunks(path, special_tokens, workers)
    jobs = [(path, s, e, tuple(special_tokens)) for s, e in chunks]
    total: Counter[str] = Counter()
    done = 0
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(chunks) > 1:
            pool = stack.enter_context(ProcessPoolExecutor(max_workers=min(workers, len(chunks))))
            results = pool.map(_count_chunk, jobs)
        else:
            results = map(_count_chunk, jobs)
        for (start, end), counts in zip(chunks, results, strict=True):
            total.update(counts)
            done += end - start
            if size >= PROGRESS_ABOVE_BYTES:
                log.info("pre-tokenized %s: %.0f%% (%d distinct)", Path(path).name, 100 * done / size, len(total))
    return total


def iter_pretokens(text: str) -> Iterator[str]:
    """The GPT-2 pre-tokens of `text` (no special-token handling)."""
    return (m.group() for m in GPT2_REGEX.finditer(text))
