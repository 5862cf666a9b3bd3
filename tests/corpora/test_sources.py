"""cs336lm.corpora.sources: a dataset's source in one line and its tokenizer's special tokens."""

from __future__ import annotations

from cs336lm.corpora.sources import describe_source, special_tokens


def test_a_source_in_words():
    assert describe_source({"url": "https://example.org/owt_valid.txt.gz"}) == "https://example.org/owt_valid.txt.gz"
    assert describe_source({"synthetic": {"bytes": 40000, "seed": 2, "style": "web"}}) == \
        "synthetic (web style, 40,000 bytes, seed 2)"
    assert describe_source({"synthetic": {"bytes": 1000}}) == "synthetic (tinystories style, 1,000 bytes, seed 0)"


def test_special_tokens_default_to_end_of_text():
    assert special_tokens({"tokenizer": {"vocab_size": 500}}) == ["<|endoftext|>"]
    assert special_tokens({"tokenizer": {"special_tokens": ["<a>", "<b>"]}}) == ["<a>", "<b>"]
