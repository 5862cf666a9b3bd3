"""The fast encoding path: tiktoken's Rust core run on *our* vocabulary, and the check that makes it exact.

tiktoken merges by rank (the adjacent pair whose concatenation has the lowest id); our reference merges by merge
order. `rank_consistent` decides, once per vocabulary, whether the two give the same ids for every input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise

import numpy as np

from cs336lm.tokenization.pretokenize import GPT2_PATTERN
from cs336lm.tokenization.segments import assemble, gather, group_segments, joinable, segment_bounds

# Joins the distinct segments of a text for one call of tiktoken's core; a special token that only that call
# allows, so each segment is encoded on its own exactly as if alone.
_SEPARATOR = "\uffff<|cs336lm segment|>\uffff"


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
    """A tiktoken Encoding whose ranks are our ids (call only after `rank_consistent` said yes); it also knows the
    segment separator of `encode_by_segments` as a special token, which only that function allows."""
    import tiktoken

    specials = {s.encode("utf-8") for s in special_to_id}
    ranks = {t: i for t, i in token_to_id.items() if t not in specials}
    separator_id = max([*ranks.values(), *special_to_id.values()]) + 1
    return tiktoken.Encoding(
        name="cs336lm",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={**special_to_id, _SEPARATOR: separator_id},
    )


def encode_by_segments(
    encoding, text: str, special_re_bytes, special_to_id: Mapping[str, int], token_lengths: np.ndarray
) -> list[int] | None:
    """`encoding`'s ids for `text` (specials matched by `special_re_bytes`, leftmost-longest), encoding each
    distinct segment (`cs336lm.tokenization.segments`) once: the same ids as encoding the whole text, faster on
    natural text, whose segments repeat. `token_lengths[id]` is each token's length in bytes. None when it
    cannot apply (lone surrogates; the text holds the separator).

    The distinct segments go to tiktoken's core in one call: those that start with ASCII whitespace and end with
    a visible ASCII character simply one after another (every junction is then a safe cut, and the token
    lengths find the segments' ends among the ids), the few others apart, between separators.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    spans = [m.span() for m in special_re_bytes.finditer(data)] if special_re_bytes is not None else []
    starts, ends, is_special = segment_bounds(data, spans)
    first, which = group_segments(data, starts, ends, is_special)
    u_start, u_end, u_special = starts[first], ends[first], is_special[first]
    x = np.frombuffer(data, dtype=np.uint8)
    can_join = joinable(x, u_start, u_end) & ~u_special
    joined, specials = np.flatnonzero(can_join), np.flatnonzero(u_special)
    apart = np.flatnonzero(~can_join & ~u_special)
    block = gather(x, u_start[joined], u_end[joined]).tobytes().decode("utf-8")
    others = [data[a:b].decode() for a, b in zip(u_start[apart].tolist(), u_end[apart].tolist(), strict=True)]
    request = _SEPARATOR.join([block, *others])
    if request.count(_SEPARATOR) != len(others):
        return None
    ids = np.array(encoding.encode(request, allowed_special={_SEPARATOR}, disallowed_special=()), dtype=np.int64)
    separator_id = encoding._special_tokens[_SEPARATOR]
    cuts = np.flatnonzero(ids == separator_id)
    block_ids, rest = (ids[: cuts[0]], ids[cuts[0] :]) if len(cuts) else (ids, ids[:0])
    # Where each joined segment ends among the block's ids: its end in bytes among the tokens' ends.
    token_ends = np.cumsum(token_lengths[block_ids])
    id_ends = np.searchsorted(token_ends, np.cumsum(u_end[joined] - u_start[joined])) + 1
    joined_lengths = np.diff(id_ends, prepend=0)
    rest_cuts = np.flatnonzero(rest == separator_id)
    apart_lengths = np.diff(rest_cuts, append=len(rest)) - 1 if len(apart) else np.zeros(0, np.int64)
    special_of = {s.encode("utf-8"): i for s, i in special_to_id.items()}
    special_ids = [special_of[data[a:b]] for a, b in zip(u_start[specials].tolist(), u_end[specials].tolist(),
                                                         strict=True)]
    flat = np.concatenate([block_ids, np.delete(rest, rest_cuts), np.array(special_ids, dtype=np.int64)])
    lengths = np.concatenate([joined_lengths, apart_lengths, np.ones(len(specials), dtype=np.int64)])
    order = np.empty(len(first), dtype=np.int64)
    order[np.concatenate([joined, apart, specials])] = np.arange(len(first))
    return assemble(flat, lengths, order[which])
