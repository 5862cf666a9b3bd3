"""uint16 token files (handout §2.7, §5.1): `tokenize_file` writes a text file's (or a shard's) ids as a 1-D `.npy`,
encoding chunks in worker processes and streaming them to disk; `concatenate_token_files` joins shards;
`open_tokens` memory-maps one and `check_tokens` validates it in bounded memory."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing as mp
import os
from collections import deque
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from cs336lm.atomic import atomic_path
from cs336lm.tokenization.chunks import plan_chunks, read_chunk, resolve_workers, shard_bounds
from cs336lm.tokenization.tokenizer import Tokenizer

log = logging.getLogger(__name__)

# tokenize_file's chunks: a worker holds one as text plus its ids as a Python list (~40 bytes a token) at once.
TOKENIZE_CHUNK_BYTES = 1 << 20
# Chunks submitted but not yet written, per worker: enough to keep workers busy while the parent writes.
_IN_FLIGHT_PER_WORKER = 2
_NPY_HEADER_BYTES = 128
_COPY_TOKENS = 1 << 24  # 32 MiB of uint16 at a time when joining token files

_worker_tokenizer: Tokenizer | None = None


def _init_worker(tokenizer: Tokenizer) -> None:
    global _worker_tokenizer
    _worker_tokenizer = tokenizer


@lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's malloc_trim, or None elsewhere."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _encode_chunk(job: tuple[str, int, int]) -> np.ndarray:
    """The uint16 ids of bytes [start, end) of the text file."""
    path, start, end = job
    ids = np.asarray(_worker_tokenizer.encode(read_chunk(path, start, end)), dtype=np.uint16)
    # The chunk's text and id list are freed now, but glibc keeps the fragmented heap: without handing it back a
    # worker's RSS creeps up chunk after chunk (~30 MB over 100 MB of text), with it it stays level.
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    return ids


def npy_header(n: int) -> bytes:
    """A fixed-size (128-byte) NPY v1.0 header for a 1-D little-endian uint16 array of `n` items, so the header
    can be written before the length is known and rewritten in place after."""
    text = f"{{'descr': '<u2', 'fortran_order': False, 'shape': ({n},), }}"
    header = b"\x93NUMPY\x01\x00" + (_NPY_HEADER_BYTES - 10).to_bytes(2, "little")
    header += text.ljust(_NPY_HEADER_BYTES - len(header) - 1).encode("latin-1") + b"\n"
    assert len(header) == _NPY_HEADER_BYTES, n
    return header


def _in_order(pool, jobs: list[tuple[str, int, int]], window: int) -> Iterator[np.ndarray]:
    """pool's results for `jobs` in order, with at most `window` submitted and not yet consumed (Pool.imap would
    queue every job at once and buffer every result the consumer has not reached)."""
    pending: deque = deque()
    todo = iter(jobs)
    for job in todo:
        pending.append(pool.apply_async(_encode_chunk, (job,)))
        if len(pending) >= window:
            break
    while pending:
        ids = pending.popleft().get()
        job = next(todo, None)
        if job is not None:
            pending.append(pool.apply_async(_encode_chunk, (job,)))
        yield ids


def tokenize_file(
    text_path: str | os.PathLike,
    tokenizer: Tokenizer,
    out_path: str | os.PathLike,
    num_workers: int | None = None,
    byte_range: tuple[int, int] | None = None,
) -> int:
    """Encode a UTF-8 text file, or its `byte_range` (a shard from `pretokenize.shard_bounds`), into a uint16
    `.npy` (open it with `open_tokens`); returns the number of tokens.

    The file is cut where no special token or pre-token spans a cut (`find_chunk_boundaries`), so the ids equal
    `tokenizer.encode` of the whole text. Chunks of about TOKENIZE_CHUNK_BYTES are encoded in worker processes,
    a bounded number in flight, and each chunk's ids are appended to the output as they arrive, in order, then
    dropped: memory is O(workers x chunk), flat in the file size. The output appears atomically or not at all.
    """
    top = max(tokenizer.vocab)
    if top >= 1 << 16:
        raise ValueError(f"vocabulary has ids up to {top}: more than 65,536 ids do not fit a uint16 token file")
    text_path, out_path = str(text_path), Path(out_path)
    workers = resolve_workers(num_workers)
    chunks = plan_chunks(text_path, tokenizer.special_tokens, workers, TOKENIZE_CHUNK_BYTES, byte_range)
    jobs = [(text_path, s, e) for s, e in chunks]
    # Decide the fast path once here, not in every worker.
    tokenizer.fast_path_ok()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    size, total, done = chunks[-1][1] - chunks[0][0], 0, 0
    with atomic_path(out_path) as partial, open(partial, "wb") as f, contextlib.ExitStack() as stack:
        f.write(npy_header(0))
        if workers > 1 and len(jobs) > 1:
            ctx = mp.get_context("spawn")  # no fork: the parent may hold threads (torch, logging handlers)
            pool = stack.enter_context(ctx.Pool(min(workers, len(jobs)), _init_worker, (tokenizer,)))
            results = _in_order(pool, jobs, _IN_FLIGHT_PER_WORKER * workers)
        else:
            _init_worker(tokenizer)
            results = map(_encode_chunk, jobs)
        for (start, end), ids in zip(chunks, results, strict=True):
            ids.tofile(f)
            total += len(ids)
            done += end - start
            del ids
            if 10 * done // max(size, 1) > 10 * (done - (end - start)) // max(size, 1):  # every 10%
                log.info("tokenizing %s: %.0f%%", Path(text_path).name, 100 * done / max(size, 1))
        f.seek(0)
        f.write(npy_header(total))
    log.info("tokenized %s: %d tokens -> %s", text_path, total, out_path)
    return total


def tokenize_shard(
    text_path: str | os.PathLike,
    tokenizer: Tokenizer,
    shard: int,
    num_shards: int,
    out_path: str | os.PathLike,
    num_workers: int | None = None,
) -> int:
    """`tokenize_file` on shard `shard` of `num_shards` (`shard_bounds`); joined in order by
    `concatenate_token_files`, the shards give exactly the ids of the whole file."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} is outside 0..{num_shards - 1}")
    bounds = shard_bounds(text_path, num_shards, tokenizer.special_tokens)
    return tokenize_file(text_path, tokenizer, out_path, num_workers, (bounds[shard], bounds[shard + 1]))


def concatenate_token_files(parts: Sequence[str | os.PathLike], out_path: str | os.PathLike) -> int:
    """Join uint16 token files (e.g. the shards of one split, in order) into one, streaming _COPY_TOKENS at a
    time; returns the number of tokens. The output appears atomically or not at all."""
    arrays = [open_tokens(p) for p in parts]
    total = sum(len(a) for a in arrays)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_path) as partial, open(partial, "wb") as f:
        f.write(npy_header(total))
        for array in arrays:
            for start in range(0, len(array), _COPY_TOKENS):
                np.asarray(array[start : start + _COPY_TOKENS]).tofile(f)
    log.info("joined %d token files: %d tokens -> %s", len(arrays), total, out_path)
    return total


# ---- reading -----------------------------------------------------------------------------------------------

_SCAN_CHUNK = 1 << 24  # tokens per chunk when scanning for bad ids: 32 MiB of uint16 at a time


def open_tokens(path: str | os.PathLike, vocab_size: int | None = None) -> np.ndarray:
    """Memory-map a 1-D uint16 .npy token file; with vocab_size, also check every id is below it."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"token file {os.fspath(path)!r} does not exist")
    tokens = np.load(path, mmap_mode="r")
    if tokens.dtype != np.uint16 or tokens.ndim != 1:
        raise ValueError(
            f"token file {os.fspath(path)!r} holds a {tokens.ndim}-D {tokens.dtype} array; expected 1-D uint16"
        )
    if vocab_size is not None:
        check_tokens(tokens, 0, vocab_size)
    return tokens


def check_tokens(tokens: npt.ArrayLike, context_length: int, vocab_size: int | None = None) -> None:
    """Raise if `tokens` cannot give one window of context_length + 1 or holds an id outside [0, vocab_size).

    The scan reads the array in fixed-size chunks, so a memmapped corpus never sits in memory whole.
    """
    n = len(tokens)
    if n < context_length + 1:
        raise ValueError(f"{n} tokens are too few for one batch: context_length + 1 = {context_length + 1} needed")
    if vocab_size is None:
        return
    for start in range(0, n, _SCAN_CHUNK):
        chunk = np.asarray(tokens[start : start + _SCAN_CHUNK])
        if chunk.max() >= vocab_size or chunk.min() < 0:
            pos = int(np.flatnonzero((chunk < 0) | (chunk >= vocab_size))[0])
            raise ValueError(
                f"token id {int(chunk[pos])} at position {start + pos} is out of range for vocab_size = {vocab_size}"
            )
