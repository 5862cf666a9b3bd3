"""Pre-tokenization: the GPT-2 pattern, special-token splitting, chunk boundaries, parallel counting."""

from collections import Counter

import pytest

from cs336lm.pretokenize import (
    GPT2_REGEX,
    count_pretokens,
    count_text,
    find_chunk_boundaries,
    special_token_regex,
    split_on_special,
)


def test_gpt2_pattern_splits_like_gpt2():
    assert GPT2_REGEX.findall("Hello, world! It's 2025.\n\n  ok") == [
        "Hello", ",", " world", "!", " It", "'s", " 2025", ".", "\n\n ", " ok",
    ]  # fmt: skip


def test_longest_special_wins():
    special = special_token_regex(["<|endoftext|>", "<|endoftext|><|endoftext|>"])
    assert split_on_special("a<|endoftext|><|endoftext|>b<|endoftext|>", special) == [
        "a", "<|endoftext|><|endoftext|>", "b", "<|endoftext|>", "",
    ]  # fmt: skip


def test_count_text_never_crosses_a_special():
    counts = count_text("low<|endoftext|>er low", special_token_regex(["<|endoftext|>"]))
    assert counts == Counter({"low": 1, "er": 1, " low": 1})


@pytest.fixture
def big_file(tmp_path, fixtures_dir):
    """A 1.2 MB file (above the serial threshold) of the course corpus, documents split by <|endoftext|>."""
    text = (fixtures_dir / "corpus.en").read_text(encoding="utf-8")
    path = tmp_path / "big.txt"
    path.write_text("<|endoftext|>".join([text] * 9), encoding="utf-8")
    return path


def test_chunk_boundaries_sit_on_special_tokens(big_file):
    data = big_file.read_bytes()
    bounds = find_chunk_boundaries(big_file, 100_000, ["<|endoftext|>"])
    assert bounds[0] == 0 and bounds[-1] == len(data) and bounds == sorted(set(bounds)) and len(bounds) > 3
    assert all(data[b:].startswith(b"<|endoftext|>") for b in bounds[1:-1])


def test_chunk_boundaries_without_specials_follow_a_newline(big_file):
    data = big_file.read_bytes()
    bounds = find_chunk_boundaries(big_file, 100_000, [])
    assert len(bounds) > 3 and all(data[b - 1 : b] == b"\n" and data[b] > 32 for b in bounds[1:-1])


def test_parallel_counts_equal_serial(big_file):
    text = big_file.read_text(encoding="utf-8")
    expected = count_text(text, special_token_regex(["<|endoftext|>"]))
    assert count_pretokens(big_file, ["<|endoftext|>"], num_workers=1) == expected
    assert count_pretokens(big_file, ["<|endoftext|>"], num_workers=2) == expected
    assert count_pretokens(big_file, [], num_workers=2) == count_text(text, None)


def test_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.txt: not valid UTF-8 at byte 3"):
        count_pretokens(path, [])
