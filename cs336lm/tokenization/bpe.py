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
    specials = list(dict.fromkeys(special_tokens or ()))
    if vocab_size < 256 + len(specials):
        raise ValueError(
            f"vocab_size={vocab_size} is too small: it must hold the 256 byte tokens and "
            f"{len(specials)} special token(s), i.e. be at least {256 + len(specials)}"
        )
    if not os.path.isfile(input_path):
        raise FileNotFoundError(f"BPE training input not found: {input_path}")
    if os.path.getsize(input_path) == 0:
        raise ValueError(f"BPE training input is empty: {input_path}")
    counts = count_pretokens(input_path, specials, num_workers)
    if not counts:
        raise ValueError(f"BPE training input has no text outside special tokens: {input_path}")
    num_merges = vocab_size - 256 - len(specials)
    merges = merge_counts(counts, num_merges)
    if len(merges) < num_merges:
        log.warning("%s: only %d merges possible (asked for %d)", input_path, len(merges), num_merges)
    # Single bytes in GPT-2's id order (printable Latin-1 first, the order bytes_to_unicode assigns), so saved
    # files match GPT-2's layout and tiktoken's data_gym_to_mergeable_bpe_ranks loads them unchanged.
    vocab = {i: bytes([b]) for i, b in enumerate(bytes_to_unicode())}
    for a, b in merges:
        vocab[len(vocab)] = a + b
    for s in specials:
        vocab[len(vocab)] = s.encode("utf-8")
    return vocab, merges


def merge_counts(counts: Mapping[str, int] | Iterable[tuple[bytes, int]], num_merges: int) -> list[tuple[bytes, bytes]]:
    """The BPE merge loop on pre-token counts ({pre-token: count}, str or bytes keys); up to `num_merges` merges.

    >>> merge_counts({"low": 5, "lower": 2, "widest": 3, "newest": 6}, 6)[:3]
    [(b's', b't'), (b'e', b'st'), (b'o', b'w')]
    """
    items = counts.items() if isinstance(counts, Mapping) else counts
    token_bytes: list[bytes] = [bytes([b]) for b in range(256)]  # local ids: byte b is id b
    keys: list[str] = [_reverse_key(t) for t in token_bytes]
    words: list[list[int]] = []
    freqs: list[int] = []
    pair_counts: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)  # pair -> indices of words that may hold it
    for word, freq in items:
        seq = list(word.encode("utf-8") if isinstance(word, str) else word)
        if len(seq) < 2:
            continue  # a single byte has no pair to merge
        wi = len(words)
        words.append(seq)
        freqs.append(freq)
        for pair in pairwise(seq):
            pair_counts[pair] += freq
            where[pair].add(wi)

    heap = [(-c, keys[a], keys[b], a, b) for (a, b), c in pair_counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[bytes, bytes]] = []
    while len(merges) < num_merges and heap:
        neg, _, _, a, b = heapq.heappop(heap)
        current = pair_counts.get((a, b), 0)
        if current != -neg:
            # Counts only fall outside the new token's pairs, so a stale entry is an overestimate: re-queue it.
            if current > 0:
                heapq.heappush(heap, (-current, keys[a], keys[b], a, b))
            continue
        new = len(token_bytes)
        token_bytes.append(token_bytes[a] + token_bytes[b])
        keys.append(_reverse_key(token_bytes[new]))
        merges.append((token_bytes[a], token_bytes[b]))
        touched: set[tuple[int, int]] = set()
        for wi in where.pop((a, b)):
            _merge_word(words, wi, freqs[wi], a, b, new, pair_counts, where, touched)
        del pair_counts[(a, b)]
        for pair in touched:
            count = pair_counts[pair]
            if count > 0:
                heapq.heappush(heap, (-count, keys[pair[0]], keys[pair[1]], pair[0], pair[1]))
    return merges


def _merge_word(words, wi, freq, a, b, new, pair_counts, where, touched) -> None:
    """Replace (a, b) by `new` in word `wi`, moving its pair counts; pairs with `new` go into `touched`."""
    old = words[wi]
    n = len(old)
    out: list[int] = []
    i = 0
    while i < n:
        if i + 1 < n and old[i] == a and old[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(old[i])
            i += 1
    if len(out) == n:
        return  # stale index entry: an earlier merge already removed the pair from this word
    for pair in pairwise(old):
        pair_counts[pair] -= freq
    for pair in pairwise(out):
        pair_counts[pair] += freq
        if new in pair:
            where[pair].add(wi)
            touched.add(pair)
    words[wi] = out
