"""Fuzzing the tokenizer on the GPT-2 files: a few thousand seeded random texts (every Unicode plane, combining
marks, emoji sequences, whitespace runs, contractions, digits, lone surrogates) with special tokens dropped in at
random, including overlapping ones ("<|endoftext|>" and "<|endoftext|><|endoftext|>"), streamed through
encode_iterable in random chunks that cut across specials and pre-tokens. Ids must equal tiktoken's GPT-2
encoding (specials split longest-first by an independent scan), for the from-scratch encoder and the fast path,
and decode must give the text back (lone surrogates come back as U+FFFD, as tiktoken encodes them). Code points
assigned after Unicode 14 are left out (see `_random_char`)."""

from __future__ import annotations

import random
import unicodedata

import pytest
import tiktoken

from cs336lm.tokenization import Tokenizer
from cs336lm.tokenization import tokenizer as tokenizer_module
from cs336lm.tokenization.pretokenize import GPT2_PATTERN

EOT = "<|endoftext|>"
SPECIALS = [EOT, EOT + EOT]
CASES = 3000

_PIECES = [
    " the", "The", " quick", "fox", "'s", "'ll", "'ve", "'re", "'d", "'t", "'m", "it's", " 42", "3.14", "١٢٣", "½",
    " ", "  ", "   ", "\n", "\n\n", "\r\n", "\t", " \n ", "\u00a0", "\u3000", "\u2028", "\x85", "\x0b", "\x1c",
    "é", "e\u0301", "\u0301", "a\u0308\u0323", "ß", "İ", "ǅ", "Ⅻ", "漢字", "カタカナ", "한국어", "ไทย", "עברית", "عربى",
    "🙂", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "\u200d", "\ufeff", "\ufffd", "!", "?!", "...", "—", "«", "»", "$", "@#",
    "<|", "|>", "<|end", "endoftext", "|", "\x00", "\x7f",
]


def _random_char(rng: random.Random) -> str:
    """A code point from any plane, never a surrogate: one assigned in Unicode 14 (this Python's table), a
    never-assigned one (planes 4-13) or a private-use one (planes 15-16).

    Code points assigned after Unicode 14 are left out on purpose: the `regex` package and tiktoken's Rust engine
    carry different Unicode versions and disagree on whether e.g. U+331C7 (CJK Extension J) is a letter, which
    moves pre-token boundaries, so there the two encoders differ (documented in the README)."""
    while True:
        plane = rng.choice([0, 0, 0, 1, 1, 2, 3, 4, 9, 13, 14, 15, 16])
        cp = plane * 0x10000 + rng.randrange(0x10000)
        if 0xD800 <= cp < 0xE000:
            continue
        if 4 <= plane <= 13 or plane >= 15 or unicodedata.category(chr(cp)) != "Cn":
            return chr(cp)


def random_text(rng: random.Random, surrogates: bool) -> str:
    parts = []
    for _ in range(rng.randint(0, 25)):
        r = rng.random()
        if r < 0.55:
            parts.append(rng.choice(_PIECES))
        elif r < 0.75:
            parts.append("".join(_random_char(rng) for _ in range(rng.randint(1, 4))))
        elif r < 0.9:
            parts.append(rng.choice(SPECIALS) * rng.randint(1, 3))
        elif surrogates:
            parts.append(chr(rng.randrange(0xD800, 0xE000)))
        else:
            parts.append(rng.choice(_PIECES).upper())
    return "".join(parts)


def expected_ids(enc, special_ids: dict[str, int], text: str) -> list[int]:
    """Cut at specials by scanning left to right and taking the longest special that starts here, then tiktoken."""
    ids, start, i = [], 0, 0
    ordered = sorted(special_ids, key=len, reverse=True)
    while i < len(text):
        special = next((s for s in ordered if text.startswith(s, i)), None)
        if special is None:
            i += 1
            continue
        ids += enc.encode_ordinary(text[start:i]) + [special_ids[special]]
        i = start = i + len(special)
    return ids + enc.encode_ordinary(text[start:])


def random_chunks(rng: random.Random, text: str) -> list[str]:
    cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 6))))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


@pytest.fixture(scope="module")
def tokenizers(fixtures_dir):
    base = Tokenizer.from_files(fixtures_dir / "gpt2_vocab.json", fixtures_dir / "gpt2_merges.txt", [EOT])
    reference = Tokenizer(base.vocab, base.merges, SPECIALS, backend="python")
    fast = Tokenizer(base.vocab, base.merges, SPECIALS)
    assert fast._fast_encoder() is not None  # built now, so every length below goes through tiktoken's core
    ranks = {t: i for i, t in base.vocab.items() if t != EOT.encode()}
    enc = tiktoken.Encoding(name="gpt2-offline", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={})
    return reference, fast, enc


@pytest.mark.parametrize("block", range(6))
def test_random_texts_match_tiktoken_and_round_trip(tokenizers, block, monkeypatch):
    reference, fast, enc = tokenizers
    monkeypatch.setattr(tokenizer_module, "STREAM_CHARS", 1)  # encode_iterable cuts after every chunk
    rng = random.Random(block)
    for case in range(CASES // 6):
        text = random_text(rng, surrogates=case % 10 == 0)
        clean = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")  # a lone surrogate: one U+FFFD
        expected = expected_ids(enc, reference.special_to_id, clean)
        assert reference.encode(text) == expected, (block, case, text)
        assert fast.encode(text) == expected, (block, case, text)
        assert list(reference.encode_iterable(random_chunks(rng, text))) == expected, (block, case, text)
        assert list(fast.encode_iterable(random_chunks(rng, text))) == expected, (block, case, text)
        assert reference.decode(expected) == clean


def test_long_random_stream_matches_in_one_piece(tokenizers):
    # A single long text (the fast path's bulk case) and the same text streamed in random chunks.
    reference, fast, enc = tokenizers
    rng = random.Random(99)
    text = "".join(random_text(rng, surrogates=False) for _ in range(600))
    expected = expected_ids(enc, reference.special_to_id, text)
    assert fast.encode(text) == reference.encode(text) == expected
    assert list(fast.encode_iterable(random_chunks(rng, text) * 1)) == expected
    assert reference.decode(expected) == text
