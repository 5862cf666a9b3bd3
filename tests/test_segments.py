"""Encoding by distinct segments (cs336lm.tokenization.segments, tiktoken_path.encode_by_segments) gives exactly
the ids of encoding the whole text: segments beside specials and at the ends, long segments, non-ASCII
whitespace, no specials, and the exact grouping that takes over when the hash collides."""

from __future__ import annotations

import random

import numpy as np
import pytest

from cs336lm.tokenization import Tokenizer, segments
from cs336lm.tokenization import tiktoken_path as fast_path

EOT = "<|endoftext|>"


@pytest.fixture(scope="module")
def gpt2(fixtures_dir):
    tok = Tokenizer.from_files(fixtures_dir / "gpt2_vocab.json", fixtures_dir / "gpt2_merges.txt", [EOT])
    reference = Tokenizer(tok.vocab, tok.merges, [EOT], backend="python")
    assert tok._fast_encoder() is not None
    return tok, reference


def _by_segments(tok: Tokenizer, text: str) -> list[int] | None:
    return fast_path.encode_by_segments(tok._fast, text, tok._special_re_bytes, tok.special_to_id, tok._token_lengths())


TEXTS = [
    "",
    "a",
    EOT,
    EOT * 3,
    f"{EOT}x{EOT} {EOT}\n{EOT}",
    "word " * 50 + "\u00a0nbsp\u3000ideographic\u2028line\x85next\x0bvt\x0cff",
    "supercalifragilisticexpialidocious antidisestablishmentarianism " * 20,
    "x" * 500 + " " + "y" * 17 + "\n" + "z" * 16 + "\t" + "w" * 15,
    "   leading spaces\n\n\nthen blank lines  \n trailing   ",
    "it's we'll they've I'd don't 's 're \n'll",
    "Ünïcödé wörds, 漢字 and 🙂 emoji 🙂 everywhere 🙂\r\n" * 30,
]


@pytest.mark.parametrize("text", TEXTS)
def test_segments_give_the_ids_of_the_whole_text(gpt2, text):
    tok, reference = gpt2
    assert _by_segments(tok, text) == reference.encode(text)


def test_random_documents(gpt2, fixtures_dir):
    tok, reference = gpt2
    words = (fixtures_dir / "tinystories_sample.txt").read_text(encoding="utf-8").split(" ")
    rng = random.Random(0)
    text = "".join(rng.choice(words) + rng.choice([" ", "  ", "\n", "\n\n", EOT, "", ",\t"]) for _ in range(20_000))
    assert _by_segments(tok, text) == reference.encode(text)
    assert tok.encode(text) == reference.encode(text)  # what Tokenizer.encode does with long text


def test_hash_collisions_fall_back_to_exact_grouping(gpt2, monkeypatch):
    tok, reference = gpt2
    zero = np.zeros(3, dtype=np.uint64)
    monkeypatch.setattr(segments, "_MIX", (zero[0], zero[1], zero[2]))  # every short segment hashes to 0
    text = "the cat and the dog, the end.\n" * 40 + EOT + "x"
    assert _by_segments(tok, text) == reference.encode(text)


def test_separator_in_text_or_lone_surrogate_declines_or_stays_exact(gpt2):
    tok, reference = gpt2
    for text in ["a" + fast_path._SEPARATOR + " b", fast_path._SEPARATOR, "x " + fast_path._SEPARATOR * 3]:
        assert _by_segments(tok, text) in (None, reference.encode(text))
    assert _by_segments(tok, "a\ud800b") is None
    text = ("abc " + fast_path._SEPARATOR + " ") * 20_000
    assert tok.encode(text) == reference.encode(text)
