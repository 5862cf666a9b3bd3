"""The fast encoding path: tiktoken's Rust core run on *our* vocabulary, and the check that makes it exact.

tiktoken merges by rank (the adjacent pair whose concatenation has the lowest id); our reference merges by merge
order. `rank_consistent` decides, once per vocabulary, whether the two give the same ids for every input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise

from cs336lm.tokenization.pretokenize import GPT2_PATTERN


def rank_consistent(
    vocab: Mapping[int, bytes],
    merges: Sequence[tuple[bytes, bytes]],
    token_to_id: Mapping[bytes, int],
    special_tokens: Sequence[str],
    merge_bpe: Callable[[bytes], list[int]],
) -> bool:
    """Whether tiktoken's rank-BPE gives exactly merge-BPE's ids (`merge_bpe`, the reference) for this vocabulary.

    That holds when (1) every multi-byte ordinary token is made by exactly one merge, (2) merged ids grow in merge
    order, and (3) merge-BPE of each token's own bytes gives that token. (3) is needed: were some state x, y with
    x+y a token but (x, y) no merge, merge-BPE on the bytes of x+y alone would stop at [x, y] and break (3).
    False too when tiktoken is not installed.
    """
    try:
        import tiktoken  # noqa: F401
    except ImportError:
        return False
    specials = {s.encode("utf-8") for s in special_tokens}
    made = [token_to_id[a + b] for a, b in merges]
    ordinary = [t for t in vocab.values() if len(t) > 1 and t not in specials]
    if len(set(ordinary)) != len(ordinary) or set(ordinary) != {a + b for a, b in merges}:
        return False
    if len(set(made)) != len(made) or any(x >= y for x, y in pairwise(made)):
        return False
    return all(merge_bpe(a + b) == [i] for (a, b), i in zip(merges, made, strict=True))


def build_encoding(token_to_id: Mapping[bytes, int], special_to_id: Mapping[str, int]):
    """A tiktoken Encoding whose ranks are our ids (call only after `rank_consistent` said yes)."""
    import tiktoken

    specials = {s.encode("utf-8") for s in special_to_id}
    ranks = {t: i for t, i in token_to_id.items() if t not in specials}
    return tiktoken.Encoding(
        name="cs336lm",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens=dict(special_to_id),
    )
