"""Byte-level BPE training (handout §2.5, Sennrich et al. 2016): `train_bpe(...) -> (vocab, merges)`.

Pre-token counts come from `cs336lm.tokenization.pretokenize`; the merge loop keeps pair counts incrementally, with an
index from each pair to the words holding it and a lazy max-heap, so a merge only touches words it changes.
"""

from __future__ import annotations

import heapq
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise

from cs336lm.tokenization.gpt2_format import bytes_to_unicode
from cs336lm.tokenization.pretokenize import count_pretokens

log = logging.getLogger(__name__)


# Maps byte x to 255 - x; with a terminator above every byte, comparing the mapped strings reverses
# lexicographic byte order, so a min-heap pops the lexicographically *greatest* pair among equal counts.
_REVERSE = bytes(range(255, -1, -1))


def _reverse_key(token: bytes) -> str:
    return token.translate(_REVERSE).decode("latin-1") + "\u0100"


def train_bpe(
    input_path: str | os.PathLike,
    vocab_size: int,
    special_tokens: Sequence[str] | None = None,
    num_workers: int | None = None,
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Train a byte-level BPE tokenizer on a UTF-8 text file.

    Returns `vocab` (id -> bytes: ids 0..255 the single bytes in GPT-2 order, then one id per merge in
    creation order, then the special tokens) and `merges` in creation order. Ties between equally frequent
    pairs go to the lexicographically greater `(first_bytes, second_bytes)`. Special tokens are cut out of
    the text before counting, so no merge crosses one. The result is the same for any `num_workers`
    (`None` = all cores).
    """
    specials = _checked_specials(vocab_size, special_tokens)
    if not os.path.isfile(input_path):
        raise FileNotFoundError(f"BPE training input not found: {input_path}")
    if os.path.getsize(input_path) == 0:
        raise ValueError(f"BPE training input is empty: {input_path}")
    counts = count_pretokens(input_path, specials, num_workers)
    return train_bpe_from_counts(counts, vocab_size, specials, source=str(input_path))


def train_bpe_from_counts(
    counts: Mapping[str, int], vocab_size: int, special_tokens: Sequence[str] | None = None, source: str = "the corpus"
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """`train_bpe` on pre-token counts already made (e.g. summed over shards); `source` names them in errors."""
    specials = _checked_specials(vocab_size, special_tokens)
    if not counts:
        raise ValueError(f"BPE training input has no text outside special tokens: {source}")
    num_merges = vocab_size - 256 - len(specials)
    merges = merge_counts(counts, num_merges)
    if len(merges) < num_merges:
        log.warning("%s: only %d merges possible (asked for %d)", source, len(merges), num_merges)
    # Single bytes in GPT-2's id order (printable Latin-1 first, the order bytes_to_unicode assigns), so saved
    # files match GPT-2's layout and tiktoken's data_gym_to_mergeable_bpe_ranks loads them unchanged.
    vocab = {i: bytes([b]) for i, b in enumerate(bytes_to_unicode())}
    for a, b in merges:
        vocab[len(vocab)] = a + b
    for s in specials:
        vocab[len(vocab)] = s.encode("utf-8")
    return vocab, merges


def _checked_specials(vocab_size: int, special_tokens: Sequence[str] | None) -> list[str]:
    specials = list(dict.fromkeys(special_tokens or ()))
    if vocab_size < 256 + len(specials):
        raise ValueError(
            f"vocab_size={vocab_size} is too small: it must hold the 256 byte tokens and "
            f"{len(specials)} special token(s), i.e. be at least {256 + len(specials)}"
        )
    return specials


def merge_counts(counts: Mapping[str, int] | Iterable[tuple[bytes, int]], num_merges: int) -> list[tuple[bytes, bytes]]:
    """The BPE merge loop on pre-token counts ({pre-token: count}, str or bytes keys); up to `num_merges` merges.

    Each word is a str with one character per token (chr(id)), so finding and replacing a pair in a word runs in
    C (`str.find`, `str.replace`, which is BPE's left-to-right merge). Pair counts change only next to the merged
    pair, and `where` maps a pair to the words that may hold it, so a merge touches only those words.

    >>> merge_counts({"low": 5, "lower": 2, "widest": 3, "newest": 6}, 6)[:3]
    [(b's', b't'), (b'e', b'st'), (b'o', b'w')]
    """
    items = counts.items() if isinstance(counts, Mapping) else counts
    token_bytes: list[bytes] = [bytes([b]) for b in range(256)]  # local ids: byte b is id b, i.e. chr(b)
    keys: list[str] = [_reverse_key(t) for t in token_bytes]
    words: list[str] = []
    freqs: list[int] = []
    pair_counts: dict[str, int] = defaultdict(int)  # a pair is the 2-character str of its two ids
    where: dict[str, list[int]] = defaultdict(list)  # pair -> words that may hold it (stale entries allowed)
    for word, freq in items:
        w = (word.encode("utf-8") if isinstance(word, str) else bytes(word)).decode("latin-1")
        if len(w) < 2:
            continue  # a single byte has no pair to merge
        wi = len(words)
        words.append(w)
        freqs.append(freq)
        for j in range(len(w) - 1):
            pair = w[j : j + 2]
            pair_counts[pair] += freq
            where[pair].append(wi)

    heap = [(-c, keys[ord(p[0])], keys[ord(p[1])], p) for p, c in pair_counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[bytes, bytes]] = []
    while len(merges) < num_merges and heap:
        neg, _, _, pair = heapq.heappop(heap)
        current = pair_counts.get(pair, 0)
        if current != -neg:
            # Counts only fall outside the new token's pairs, so a stale entry is an overestimate: re-queue it.
            if current > 0:
                heapq.heappush(heap, (-current, keys[ord(pair[0])], keys[ord(pair[1])], pair))
            continue
        a, b = ord(pair[0]), ord(pair[1])
        new = chr(len(token_bytes))
        token_bytes.append(token_bytes[a] + token_bytes[b])
        keys.append(_reverse_key(token_bytes[-1]))
        merges.append((token_bytes[a], token_bytes[b]))
        # The loop below is the hot path (about a million word visits for 20 MB of text), so it is written out
        # in one function body: calls and attribute look-ups would double its time.
        touched: set[str] = set()
        for wi in where.pop(pair):
            old = words[wi]
            i = old.find(pair)
            if i < 0:
                continue  # stale index entry: an earlier merge already removed the pair from this word
            freq = freqs[wi]
            merged = words[wi] = old.replace(pair, new)
            if len(merged) == len(old) - 1:  # one occurrence (the common case): only its two neighbours change
                if i:
                    pair_counts[old[i - 1 : i + 1]] -= freq  # (left, first) becomes (left, new)
                    p = merged[i - 1 : i + 1]
                    pair_counts[p] += freq
                    where[p].append(wi)
                    touched.add(p)
                if i + 2 < len(old):
                    pair_counts[old[i + 1 : i + 3]] -= freq  # (second, right) becomes (new, right)
                    p = merged[i : i + 2]
                    pair_counts[p] += freq
                    where[p].append(wi)
                    touched.add(p)
                continue
            for j in range(len(old) - 1):
                pair_counts[old[j : j + 2]] -= freq
            for j in range(len(merged) - 1):
                p = merged[j : j + 2]
                pair_counts[p] += freq
                if new in p:
                    where[p].append(wi)
                    touched.add(p)
        del pair_counts[pair]
        for p in touched:
            count = pair_counts[p]
            if count > 0:
                heapq.heappush(heap, (-count, keys[ord(p[0])], keys[ord(p[1])], p))
    return merges


def reference_merges(counts: Mapping[str, int], num_merges: int) -> list[tuple[bytes, bytes]]:
    """The from-scratch reference for `merge_counts` (tests only): recount every pair before each merge, take the
    most frequent, ties to the lexicographically greater (first_bytes, second_bytes), merge it everywhere."""
    words: dict[tuple[bytes, ...], int] = defaultdict(int)
    for word, freq in counts.items():
        words[tuple(bytes([b]) for b in word.encode("utf-8"))] += freq
    merges: list[tuple[bytes, bytes]] = []
    while len(merges) < num_merges:
        pairs: dict[tuple[bytes, bytes], int] = defaultdict(int)
        for word, freq in words.items():
            for pair in pairwise(word):
                pairs[pair] += freq
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], p))
        merges.append(best)
        merged: dict[tuple[bytes, ...], int] = defaultdict(int)
        for word, freq in words.items():
            out, i = [], 0
            while i < len(word):
                if word[i : i + 2] == best:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += freq
        words = merged
    return merges
