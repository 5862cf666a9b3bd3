"""Fuzzing the tokenizer on the GPT-2 files: a few thousand seeded random texts (every Unicode plane, combining
marks, emoji sequences, whitespace runs, contractions, digits, lone surrogates) with special tokens dropped in at
random, including overlapping ones ("<|endoftext|>" and "<|endoftext|><|endoftext|>"), streamed through
encode_iterable in random chunks that cut across specials and pre-tokens. Ids must equal tiktoken's GPT-2
encoding (specials split longest-first by an independent scan), for the from-scratch encoder and the fast path,
and decode must give the text back (lone surrogates come back as U+FFFD, as tiktoken encodes them). Code points
assigned after Unicode 14 are left out (see `_random_char`)."""

from __future__ import annotations

import random

import pytest
import tiktoken

from cs336lm.tokenization import Tokenizer
from cs336lm.tokenization import tokenizer as tokenizer_module
from cs336lm.tokenization.pretokenize import GPT2_PATTERN
from tests.helpers import SPECIALS, random_text

EOT = "<|endoftext|>"
CASES = 3000




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
