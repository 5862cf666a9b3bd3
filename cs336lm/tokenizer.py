"""Byte-level BPE tokenizer (handout §2.6): encode / encode_iterable / decode, GPT-2 file format (vocab.json +
merges.txt) for `from_files` and `save`, and `tokenize_file` writing uint16 token files (handout §2.7).

The pure-Python merge-by-rank encoder is the reference. Bulk encoding goes through tiktoken's Rust core built
from *our* vocab and merges, used only after checking that rank-BPE equals merge-BPE for this vocabulary.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import multiprocessing as mp
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import numpy as np
import regex

from cs336lm.atomic import atomic_path, atomic_write_text
from cs336lm.pretokenize import (
    GPT2_PATTERN,
    GPT2_REGEX,
    plan_chunks,
    read_chunk,
    resolve_workers,
    special_token_regex,
    split_on_special,
)

log = logging.getLogger(__name__)

# Below this many characters the cached reference encoder is as fast as a call into tiktoken, and it spares
# tiny jobs (and the course tests, which build a tokenizer per test) the one-off fast-path check.
FAST_PATH_MIN_CHARS = 4096
# encode_iterable encodes once this much text is buffered; memory stays O(this + longest pre-token).
STREAM_CHARS = 1 << 16
_CACHE_LIMIT = 1 << 18
# Right before whitespace that follows a non-whitespace character, splitting cannot change the pre-tokens: no
# pre-token holding a non-whitespace character goes on into whitespace after it, and the whitespace run is then
# matched from its start either way. (Right *after* whitespace is not safe: "a\n\nx" pre-tokenizes as
# ["a", "\n", "\n", "x"], but "a\n\n" alone ends in "\n\n".) Searched from the end of the streamed text.
_SAFE_CUT = regex.compile(r"(?r)(?<=\S)\s")


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte: printable Latin-1 bytes map to themselves, the other 68 bytes
    to chr(256 + n) in byte order (so a space is "Ġ", a newline "Ċ")."""
    printable = [b for b in range(256) if chr(b).isprintable() and chr(b) != " "]
    table = {b: chr(b) for b in printable}
    n = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + n)
            n += 1
    return table


@lru_cache(maxsize=1)
def _decode_table() -> dict[int, str]:
    """str.translate table: each stand-in to the Latin-1 character of its byte; other low characters to
    U+FFFF, which (like any character above the stand-ins) then fails the Latin-1 encode."""
    table = {c: "\uffff" for c in range(512)}
    table.update({ord(c): chr(b) for b, c in bytes_to_unicode().items()})
    return table


def token_to_str(token: bytes) -> str:
    table = bytes_to_unicode()
    return "".join(table[b] for b in token)


def str_to_token(text: str, where: str) -> bytes:
    try:
        return text.translate(_decode_table()).encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{where}: {text!r} has characters outside GPT-2's byte alphabet") from None


class Tokenizer:
    """Byte-level BPE tokenizer from `vocab` (id -> bytes), `merges` (in creation order) and special tokens.

    `backend="auto"` encodes bulk text through tiktoken when this vocabulary passes `fast_path_ok`;
    `backend="python"` forces the reference encoder. Both give the same ids (tested).

    >>> tok = Tokenizer({i: bytes([i]) for i in range(256)} | {256: b"ab"}, [(b"a", b"b")], ["<|eot|>"])
    >>> tok.encode("abc<|eot|>")
    [256, 99, 257]
    """

    def __init__(
        self,
        vocab: dict[int, bytes],
        merges: list[tuple[bytes, bytes]],
        special_tokens: Sequence[str] | None = None,
        backend: str = "auto",
    ):
        if backend not in ("auto", "python"):
            raise ValueError(f"backend must be 'auto' or 'python', got {backend!r}")
        self.vocab: dict[int, bytes] = dict(vocab)
        self.merges: list[tuple[bytes, bytes]] = list(merges)
        self.special_tokens: list[str] = list(dict.fromkeys(special_tokens or ()))
        self.backend = backend
        # The lowest id wins for a byte string listed twice (e.g. a special token equal to an ordinary token).
        self.token_to_id: dict[bytes, int] = {t: i for i, t in sorted(self.vocab.items(), reverse=True)}
        self.special_to_id: dict[str, int] = {}
        for s in self.special_tokens:
            if s.encode("utf-8") not in self.token_to_id:  # the course adapter may pass specials missing from vocab
                self.vocab[max(self.vocab, default=-1) + 1] = s.encode("utf-8")
                self.token_to_id[s.encode("utf-8")] = max(self.vocab)
            self.special_to_id[s] = self.token_to_id[s.encode("utf-8")]
        missing = [b for b in range(256) if bytes([b]) not in self.token_to_id]
        if missing:
            raise ValueError(f"vocab lacks single-byte tokens for bytes {missing[:8]} (a byte-level BPE needs all 256)")
        self._byte_ids = [self.token_to_id[bytes([b])] for b in range(256)]
        # (left id, right id) -> (rank, merged id); the first of duplicate merges keeps its rank.
        get = self.token_to_id.get
        self._ranks: dict[tuple[int, int], tuple[int, int]] = {}
        for rank, (a, b) in reversed(list(enumerate(self.merges))):
            ids = (get(a), get(b), get(a + b))
            if None in ids:
                raise ValueError(f"merge {rank} {(a, b)!r} names a token that is not in the vocab")
            self._ranks[ids[0], ids[1]] = (rank, ids[2])
        self._special_re = special_token_regex(self.special_tokens)
        self._special_prefixes = {s[:k] for s in self.special_tokens for k in range(1, len(s))}
        self._special_set = set(self.special_tokens)
        self._specials_prefix_free = not (self._special_set & self._special_prefixes)
        self._cache: dict[str, list[int]] = {}
        self._fast = None  # tiktoken.Encoding once built
        self._fast_ok: bool | None = None  # None: not yet checked

    @classmethod
    def from_files(
        cls, vocab_path: str | os.PathLike, merges_path: str | os.PathLike, special_tokens: Sequence[str] | None = None
    ) -> Tokenizer:
        """Load GPT-2 format files: vocab.json ({token string: id}) and merges.txt ("left right" per line, an
        optional "#version" header), tokens written with GPT-2's byte stand-ins. Every special token must be in
        the vocab."""
        with open(vocab_path, encoding="utf-8") as f:
            raw = json.load(f)
        vocab = {int(i): str_to_token(s, f"{vocab_path}: token") for s, i in raw.items()}
        known = set(vocab.values())
        merges = []
        with open(merges_path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line.strip() or (lineno == 1 and line.startswith("#version")):
                    continue
                parts = line.split(" ")
                if len(parts) != 2:
                    raise ValueError(f"{merges_path}:{lineno}: expected 'left right', got {line!r}")
                pair = tuple(str_to_token(p, f"{merges_path}:{lineno}") for p in parts)
                for p, t in zip(parts, pair, strict=True):
                    if t not in known:
                        raise ValueError(f"{merges_path}:{lineno}: token {p!r} is not in {vocab_path}")
                merges.append(pair)
        for s in special_tokens or ():
            if s.encode("utf-8") not in known:
                raise ValueError(f"special token {s!r} is not in {vocab_path}")
        return cls(vocab, merges, special_tokens)

    def save(self, directory: str | os.PathLike) -> tuple[Path, Path]:
        """Write `vocab.json` and `merges.txt` (GPT-2 format, loadable by HF tokenizers and tiktoken) atomically."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        vocab_json = json.dumps({token_to_str(t): i for i, t in sorted(self.vocab.items())}, ensure_ascii=False)
        merges_txt = "#version: 0.2\n" + "".join(f"{token_to_str(a)} {token_to_str(b)}\n" for a, b in self.merges)
        paths = (out / "vocab.json", out / "merges.txt")
        for path, text in zip(paths, (vocab_json, merges_txt), strict=True):
            atomic_write_text(path, text)
        return paths

    # ---- encoding -------------------------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`: cut at special tokens (longest first), pre-tokenize, merge by rank."""
        fast = self._fast_encoder() if len(text) >= FAST_PATH_MIN_CHARS else self._fast
        if fast is not None and self._specials_prefix_free:
            # No special is a prefix of another, so tiktoken's own special matching equals longest-first.
            return fast.encode(text, allowed_special=self._special_set, disallowed_special=())
        ids: list[int] = []
        pieces = split_on_special(text, self._special_re)
        for k, piece in enumerate(pieces):
            if k % 2:
                ids.append(self.special_to_id[piece])
            elif piece:
                ids.extend(fast.encode_ordinary(piece) if fast is not None else self._encode_ordinary(piece))
        return ids

    def encode_iterable(self, iterable: Iterable[str]) -> Iterator[int]:
        """Lazily encode an iterable of strings (e.g. a file's lines) as one text, in bounded memory.

        Text is encoded up to a cut that no pre-token or special token spans; the tail waits for more input.
        """
        parts: list[str] = []
        size = 0
        for chunk in iterable:
            parts.append(chunk)
            size += len(chunk)
            if size < STREAM_CHARS:
                continue
            buf = "".join(parts)
            cut = self._safe_cut(buf)
            if cut:
                yield from self.encode(buf[:cut])
                buf = buf[cut:]
            parts, size = [buf], len(buf)
        yield from self.encode("".join(parts))

    def _safe_cut(self, buf: str) -> int:
        """A position in `buf` such that encoding buf[:p] and buf[p:] apart equals encoding buf whole."""
        # A suffix that could grow into a special token must wait for more input.
        hold = next((k for k in range(min(len(buf), 256), 0, -1) if buf[-k:] in self._special_prefixes), 0)
        limit = len(buf) - hold
        tail = split_on_special(buf[:limit], self._special_re)[-1]
        start = limit - len(tail)  # the last ordinary segment (a special token or nothing precedes it)
        m = _SAFE_CUT.search(buf, start, limit)
        if m and m.start() > start:
            return m.start()
        last = deque(GPT2_REGEX.finditer(buf, start, limit), maxlen=1)
        # The last pre-token may still grow; everything before it is final.
        return last[0].start() if last else limit

    def _encode_ordinary(self, text: str) -> list[int]:
        """Reference encoder: GPT-2 pre-tokens, each merged by rank, cached per pre-token string."""
        cache = self._cache
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        ids: list[int] = []
        try:
            for word in GPT2_REGEX.findall(text):
                cached = cache.get(word)
                if cached is None:
                    cached = cache[word] = self._bpe(word.encode("utf-8"))
                ids.extend(cached)
        except UnicodeEncodeError:
            # Lone surrogates: replace them with U+FFFD first, exactly as tiktoken does.
            return self._encode_ordinary(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))
        return ids

    def _bpe(self, piece: bytes) -> list[int]:
        """Merge-BPE of one pre-token: repeatedly merge the adjacent pair with the lowest merge rank."""
        ids = [self._byte_ids[b] for b in piece]
        ranks = self._ranks
        while len(ids) > 1:
            best = None
            for pair in pairwise(ids):
                r = ranks.get(pair)
                if r is not None and (best is None or r[0] < best[0]):
                    best, best_pair = r, pair
            if best is None:
                break
            a, b = best_pair
            merged, i, n = [], 0, len(ids)
            while i < n:
                if i + 1 < n and ids[i] == a and ids[i + 1] == b:
                    merged.append(best[1])
                    i += 2
                else:
                    merged.append(ids[i])
                    i += 1
            ids = merged
        return ids

    # ---- the tiktoken fast path -----------------------------------------------------------------------------

    def fast_path_ok(self) -> bool:
        """Whether tiktoken's rank-BPE gives exactly our merge-BPE ids for this vocabulary, for every input.

        tiktoken merges the adjacent pair whose concatenation has the lowest id. That equals merge-BPE when
        (1) every multi-byte ordinary token is made by exactly one merge, (2) merged ids grow in merge order, and
        (3) merge-BPE of each token's own bytes gives that token. (3) is needed: were some state x, y with x+y a
        token but (x, y) no merge, merge-BPE on the bytes of x+y alone would stop at [x, y] and break (3).
        """
        if self._fast_ok is None:
            self._fast_ok = self.backend == "auto" and self._check_rank_consistent()
        return self._fast_ok

    def _check_rank_consistent(self) -> bool:
        try:
            import tiktoken  # noqa: F401
        except ImportError:
            return False
        specials = {s.encode("utf-8") for s in self.special_tokens}
        made = [self.token_to_id[a + b] for a, b in self.merges]
        ordinary = [t for t in self.vocab.values() if len(t) > 1 and t not in specials]
        if len(set(ordinary)) != len(ordinary) or set(ordinary) != {a + b for a, b in self.merges}:
            return False
        if len(set(made)) != len(made) or any(x >= y for x, y in pairwise(made)):
            return False
        return all(self._bpe(a + b) == [i] for (a, b), i in zip(self.merges, made, strict=True))

    def _fast_encoder(self):
        if self._fast is None and self.fast_path_ok():
            import tiktoken

            specials = {s.encode("utf-8") for s in self.special_tokens}
            ranks = {t: i for t, i in self.token_to_id.items() if t not in specials}
            self._fast = tiktoken.Encoding(
                name="cs336lm", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=self.special_to_id
            )
        return self._fast

    def __getstate__(self):
        # tiktoken's core is rebuilt on arrival (cheap); the verdict of the check travels.
        state = self.__dict__.copy()
        state["_fast"] = None
        state["_cache"] = {}
        return state

    # ---- decoding -------------------------------------------------------------------------------------------

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`; byte sequences that are not valid UTF-8 become U+FFFD."""
        vocab = self.vocab
        return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")


# ---- uint16 token files --------------------------------------------------------------------------------------

# tokenize_file's chunks: a worker holds one as text plus its ids as a Python list (~40 bytes a token) at once.
TOKENIZE_CHUNK_BYTES = 1 << 20
# Chunks submitted but not yet written, per worker: enough to keep workers busy while the parent writes.
_IN_FLIGHT_PER_WORKER = 2
_NPY_HEADER_BYTES = 128

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
    text_path: str | os.PathLike, tokenizer: Tokenizer, out_path: str | os.PathLike, num_workers: int | None = None
) -> int:
    """Encode a UTF-8 text file into a uint16 `.npy` (open it with `np.load(path, mmap_mode="r")`); returns the
    number of tokens.

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
    chunks = plan_chunks(text_path, tokenizer.special_tokens, workers, TOKENIZE_CHUNK_BYTES)
    jobs = [(text_path, s, e) for s, e in chunks]
    # Decide the fast path once here, not in every worker.
    tokenizer.fast_path_ok()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    size, total, done = chunks[-1][1] if chunks else 0, 0, 0
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
