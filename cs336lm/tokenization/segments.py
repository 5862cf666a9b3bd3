"""Text cut into independent segments, for pre-tokenizing each distinct segment once (BPE's pre-token counting).

A cut right before an ASCII whitespace character that follows a visible ASCII character is a GPT-2 pre-token
boundary whatever surrounds it (no pre-token runs from a visible character on into whitespace, and the whitespace
pre-token that starts there is matched the same with or without the text before it), so the segments between
such cuts pre-tokenize, hence encode, exactly as the whole text does. Natural text repeats its segments (" the",
" of", "\\n\\nThe"), so `group_segments` finds the distinct ones with numpy and the caller encodes each once.
"""

from __future__ import annotations

import numpy as np

_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[ord(" "), ord("\t"), ord("\n"), ord("\r")]] = True
_VISIBLE = np.zeros(256, dtype=bool)
_VISIBLE[0x21:0x7F] = True
_PACKED = 16  # segments up to this many bytes are grouped exactly in numpy; longer ones in a dict
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))


def segment_bounds(data: bytes, spans: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, is_special) of the segments of UTF-8 `data`, in order, where `spans` are the special-token
    matches (each becomes one segment of its own)."""
    n = len(data)
    x = np.frombuffer(data, dtype=np.uint8)
    cut = np.zeros(n + 1, dtype=bool)
    cut[0] = cut[n] = True
    if n > 1:
        np.logical_and(_WHITESPACE[x[1:]], _VISIBLE[x[:-1]], out=cut[1:n])
    special_starts = np.array([s for s, _ in spans], dtype=np.int64)
    for s, e in spans:  # no cut inside a special token, one on both sides of it
        cut[s + 1 : e] = False
        cut[s] = cut[e] = True
    bounds = np.flatnonzero(cut)
    starts, ends = bounds[:-1], bounds[1:]
    is_special = np.isin(starts, special_starts) if spans else np.zeros(len(starts), dtype=bool)
    return starts, ends, is_special


def group_segments(data: bytes, starts: np.ndarray, ends: np.ndarray, is_special: np.ndarray):
    """(first, which): `first[k]` is the index of one segment of the k-th distinct one (special matches kept
    apart from equal ordinary text), `which[i]` the distinct segment of segment i."""
    lengths = ends - starts
    which = np.empty(len(starts), dtype=np.int64)
    short = np.flatnonzero(lengths <= _PACKED)
    s, length = starts[short], lengths[short]
    # Each short segment as two little-endian 8-byte words read in place (a byte-strided view of the text),
    # bytes past its end masked off, plus its length and kind.
    padded = data + bytes(_PACKED + 8)
    words8 = np.ndarray(shape=(len(data) + _PACKED,), dtype="<u8", buffer=padded, strides=(1,))
    w0 = words8[s] & _MASKS[np.minimum(length, 8)]
    w1 = words8[s + 8] & _MASKS[np.clip(length - 8, 0, 8)]
    tag = length.astype(np.uint64) | (is_special[short].astype(np.uint64) << np.uint64(8))
    key = w0 * _MIX[0] + ((w1 * _MIX[1]) ^ (tag * _MIX[2]))
    first, inverse = _group_equal(key)
    # A hash is not an identity: check every segment against its group's first one (exact), else go by bytes.
    same = (w0[first][inverse] == w0) & (w1[first][inverse] == w1) & (tag[first][inverse] == tag)
    if not same.all():
        first, inverse = _group_exactly(np.column_stack([w0, w1, tag]))
    which[short] = inverse
    first_of = list(short[first].tolist())
    long_ids: dict[tuple[bytes, bool], int] = {}
    long_which = []
    long = np.flatnonzero(lengths > _PACKED)
    for i, a, b, special in zip(long.tolist(), starts[long].tolist(), ends[long].tolist(), is_special[long].tolist(),
                                strict=True):
        k = long_ids.setdefault((data[a:b], special), len(first_of))
        if k == len(first_of):
            first_of.append(i)
        long_which.append(k)
    which[long] = long_which
    return np.array(first_of, dtype=np.int64), which


def _group_equal(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, inverse) for the distinct values of `key`: one sort (np.unique with return_index and return_inverse
    costs a stable sort and more); `first[k]` is some occurrence of the k-th distinct value."""
    order = np.argsort(key)
    ordered = key[order]
    starts_group = np.empty(len(key), dtype=bool)
    starts_group[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts_group[1:])
    inverse = np.empty(len(key), dtype=np.int64)
    inverse[order] = np.cumsum(starts_group) - 1
    return order[starts_group], inverse


_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)


def _group_exactly(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def joinable(x: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which segments of the bytes `x` start with ASCII whitespace and end with a visible ASCII character: any of
    them may follow one another, since every junction is then a safe cut."""
    return _WHITESPACE[x[starts]] & _VISIBLE[x[ends - 1]]


def gather(x: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """x[starts[0]:ends[0]] + x[starts[1]:ends[1]] + ... in one numpy gather."""
    lengths = ends - starts
    out_starts = np.cumsum(lengths) - lengths
    return x[np.repeat(starts - out_starts, lengths) + np.arange(int(lengths.sum()))]
