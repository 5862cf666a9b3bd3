"""Byte-level BPE tokenizer (handout §2.6): encode / encode_iterable / decode, loaded from and saved to GPT-2 files.

The pure-Python merge-by-rank encoder here is the reference (`backend="python"`). Bulk encoding goes through
tiktoken's Rust core built from *our* vocab and merges (`cs336lm.tokenization.tiktoken_path`), used only after
checking that rank-BPE equals merge-BPE for this vocabulary.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from itertools import pairwise
from pathlib import Path

import regex

from cs336lm.tokenization import tiktoken_path
from cs336lm.tokenization.gpt2_format import load_gpt2_files, save_gpt2_files
from cs336lm.tokenization.pretokenize import GPT2_REGEX, special_token_regex, split_on_special

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
        self._longest_special = max(map(len, self.special_tokens), default=0)
        self._specials_prefix_free = not (self._special_set & self._special_prefixes)
        self._cache: dict[str, list[int]] = {}
        self._fast = None  # tiktoken.Encoding once built
        self._fast_ok: bool | None = None  # None: not yet checked

    @classmethod
    def from_files(
        cls, vocab_path: str | os.PathLike, merges_path: str | os.PathLike, special_tokens: Sequence[str] | None = None
    ) -> Tokenizer:
        """Load GPT-2 format files (vocab.json, merges.txt); every special token must be in the vocab."""
        return cls(*load_gpt2_files(vocab_path, merges_path, special_tokens), special_tokens)

    def save(self, directory: str | os.PathLike) -> tuple[Path, Path]:
        """Write `vocab.json` and `merges.txt` (GPT-2 format, loadable by HF tokenizers and tiktoken) atomically."""
        return save_gpt2_files(self.vocab, self.merges, directory)

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
        limit = self._settled_specials(buf)
        tail = split_on_special(buf[:limit], self._special_re)[-1]
        start = limit - len(tail)  # the last ordinary segment (a special token or nothing precedes it)
        m = _SAFE_CUT.search(buf, start, limit)
        if m and m.start() > start:
            return m.start()
        # The last pre-token may still grow, so cut at a pre-token start before it; and only after a non-whitespace
        # character: a whitespace run that ends at the cut would be matched differently once alone, because its
        # (?!\S) lookahead would see the end instead of the next pre-token.
        starts = [m.start() for m in GPT2_REGEX.finditer(buf, start, limit)]
        if not starts:
            return limit
        return next((p for p in reversed(starts[:-1]) if not buf[p - 1].isspace()), start)

    def _settled_specials(self, buf: str) -> int:
        """Where the text starts that more input could still turn into, or fold into, a special token.

        Specials are matched leftmost-longest from the start of `buf`. A match that starts within the longest
        special's length of the end may be the beginning of a longer special (with "<|eot|>" and "<|eot|><|eot|>"
        registered, "<|eot|>" at the end may pair with the next chunk's); after the last settled match, a suffix
        that is a proper prefix of a special may complete into one.
        """
        n, longest = len(buf), self._longest_special
        limit, settled = n, 0
        if self._special_re is not None:
            for m in self._special_re.finditer(buf):
                if m.start() + longest > n:
                    limit = m.start()
                    break
                settled = m.end()
        for r in range(max(settled, n - longest + 1), limit):
            if buf[r:] in self._special_prefixes:
                return r
        return limit

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
            self._fast_ok = self.backend == "auto" and tiktoken_path.rank_consistent(
                self.vocab, self.merges, self.token_to_id, self.special_tokens, self._bpe
            )
        return self._fast_ok

    def _fast_encoder(self):
        if self._fast is None and self.fast_path_ok():
            self._fast = tiktoken_path.build_encoding(self.token_to_id, self.special_to_id)
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


