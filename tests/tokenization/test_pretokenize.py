"""Pre-tokenization: the GPT-2 pattern, special-token splitting, chunk boundaries, parallel counting."""

import random
from collections import Counter

import pytest

from cs336lm.tokenization import chunks, pretokenize
from cs336lm.tokenization.chunks import find_chunk_boundaries
from cs336lm.tokenization.pretokenize import (
    GPT2_REGEX,
    count_pretokens,
    count_segmented,
    count_text,
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
    last_special = data.rindex(b"<|endoftext|>")
    assert all(data[b:].startswith(b"<|endoftext|>") for b in bounds[1:-1] if b <= last_special)
    # After the last special token the cuts fall back to line breaks.
    assert all(
        data[b - 1] in range(33, 127) and data[b : b + 1] in (b"\n", b"\r") for b in bounds[1:-1] if b > last_special
    )


def test_chunk_boundaries_without_specials_precede_a_line_break(big_file):
    data = big_file.read_bytes()
    bounds = find_chunk_boundaries(big_file, 100_000, [])
    assert len(bounds) > 3 and all(data[b - 1] in range(33, 127) and data[b : b + 1] == b"\n" for b in bounds[1:-1])


OVERLAPPING = ["<|endoftext|>", "<|endoftext|><|endoftext|>", "<|end"]


def _overlapping_text(seed: int = 0, docs: int = 300) -> str:
    """Documents separated by runs of 1-5 <|endoftext|> (so the 2-run special overlaps itself), with blank-line
    runs, CRLF, trailing spaces, a bare "<|end" and non-ASCII text: every place a careless cut changes tokens."""
    rng = random.Random(seed)
    words = [
        "once",
        "upon",
        " a",
        "time",
        "héllo",
        "wörld",
        "123",
        "it's",
        "  ",
        "\n",
        "\n\n",
        "\r\n",
        " \n",
        "<|end",
        "!",
    ]
    parts = []
    for _ in range(docs):
        parts.append("".join(rng.choice(words) + rng.choice([" ", "", "\n"]) for _ in range(rng.randint(0, 12))))
        parts.append("<|endoftext|>" * rng.randint(1, 5))
    return "".join(parts)


def _split_and_count(text: str, specials) -> tuple[list[str], Counter]:
    pieces = split_on_special(text, special_token_regex(specials))
    return pieces[1::2], count_text(text, special_token_regex(specials))


@pytest.mark.parametrize("specials", [OVERLAPPING, []], ids=["overlapping", "none"])
@pytest.mark.parametrize("chunk_bytes", [1, 5, 13, 40, 300])
def test_tiny_chunks_never_cut_a_special_or_a_pre_token(tmp_path, specials, chunk_bytes):
    text = _overlapping_text()
    path = tmp_path / "t.txt"
    path.write_bytes(text.encode("utf-8"))  # no newline translation: CRLF stays
    data = path.read_bytes()
    bounds = find_chunk_boundaries(path, chunk_bytes, specials)
    assert bounds[0] == 0 and bounds[-1] == len(data) and bounds == sorted(set(bounds)) and len(bounds) > 20
    chunks = [data[s:e].decode("utf-8") for s, e in zip(bounds[:-1], bounds[1:], strict=True)]
    found, counts = [], Counter()
    for chunk in chunks:
        f, c = _split_and_count(chunk, specials)
        found += f
        counts += c
    assert (found, counts) == _split_and_count(text, specials)


def test_count_pretokens_with_overlapping_specials_and_tiny_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(pretokenize, "SERIAL_BELOW_BYTES", 0)
    monkeypatch.setattr(chunks, "MIN_CHUNK_BYTES", 1)
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 64)
    text = _overlapping_text(docs=100)
    path = tmp_path / "t.txt"
    path.write_bytes(text.encode("utf-8"))
    assert len(chunks.plan_chunks(path, OVERLAPPING, 2)) > 20
    expected = count_text(text, special_token_regex(OVERLAPPING))
    assert count_pretokens(path, OVERLAPPING, num_workers=1) == expected
    assert count_pretokens(path, OVERLAPPING, num_workers=2) == expected


def test_file_without_a_safe_cut_is_one_chunk(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("word " * 50_000 + "\n\n\n", encoding="utf-8")  # no line break after a visible character
    assert find_chunk_boundaries(path, 1000, []) == [0, path.stat().st_size]


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


@pytest.mark.parametrize("specials", [OVERLAPPING, ["<|endoftext|>"], []], ids=["overlapping", "eot", "none"])
def test_segmented_counting_equals_counting_the_whole_text(specials):
    # Random texts from the tokenizer fuzz (every plane, marks, emoji, whitespace runs, specials), and the
    # overlapping-specials corpus: counting one distinct segment at a time must change nothing.
    from tests.helpers import random_text

    rng = random.Random(len(specials))
    texts = [random_text(rng, surrogates=False) for _ in range(300)] + [_overlapping_text(seed=1)]
    texts.append("".join(texts))
    for text in texts:
        expected = count_text(text, special_token_regex(specials))
        assert count_segmented(text.encode("utf-8"), special_token_regex(specials, as_bytes=True)) == expected, text
