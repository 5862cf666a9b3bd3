"""Counting pre-tokens by distinct segments (cs336lm.tokenization.segments, pretokenize.count_segmented) gives
exactly the counts of pre-tokenizing the whole text: segments beside specials and at the ends, long segments,
non-ASCII whitespace, no specials, and the exact grouping that takes over when the hash collides. Plus the
tokenizer's encode on long random documents, which runs tiktoken's core on our vocabulary."""

from __future__ import annotations

import random

import numpy as np
import pytest

from cs336lm.tokenization import Tokenizer, segments
from cs336lm.tokenization.pretokenize import count_segmented, count_text, special_token_regex

EOT = "<|endoftext|>"
SPECIAL = special_token_regex([EOT])
SPECIAL_BYTES = special_token_regex([EOT], as_bytes=True)

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
def test_segments_count_the_pre_tokens_of_the_whole_text(text):
    assert count_segmented(text.encode("utf-8"), SPECIAL_BYTES) == count_text(text, SPECIAL)


def test_random_documents(fixtures_dir):
    words = (fixtures_dir / "tinystories_sample.txt").read_text(encoding="utf-8").split(" ")
    rng = random.Random(0)
    text = "".join(rng.choice(words) + rng.choice([" ", "  ", "\n", "\n\n", EOT, "", ",\t"]) for _ in range(20_000))
    assert count_segmented(text.encode("utf-8"), SPECIAL_BYTES) == count_text(text, SPECIAL)
    tok = Tokenizer.from_files(fixtures_dir / "gpt2_vocab.json", fixtures_dir / "gpt2_merges.txt", [EOT])
    reference = Tokenizer(tok.vocab, tok.merges, [EOT], backend="python")
    assert tok._fast_encoder() is not None
    assert tok.encode(text) == reference.encode(text)  # long text: tiktoken's core on our vocabulary


def test_hash_collisions_fall_back_to_exact_grouping(monkeypatch):
    zero = np.zeros(3, dtype=np.uint64)
    monkeypatch.setattr(segments, "_MIX", (zero[0], zero[1], zero[2]))  # every short segment hashes to 0
    text = "the cat and the dog, the end.\n" * 40 + EOT + "x"
    assert count_segmented(text.encode("utf-8"), SPECIAL_BYTES) == count_text(text, SPECIAL)
