"""uint16 token files: tokenize_file equals encode (1 and 2 workers, tiny chunks, overlapping specials), flat
memory, refusal of big vocabularies; open_tokens/check_tokens validation; the files feed get_batch."""

import sys

import numpy as np
import pytest
import torch

from cs336lm.corpora.synthetic import write_stories
from cs336lm.lm.data import get_batch
from cs336lm.tokenization import Tokenizer, chunks, token_files, train_bpe
from cs336lm.tokenization.token_files import check_tokens, open_tokens, tokenize_file
from tests.helpers import peak_rss_mb

EOT = "<|endoftext|>"


@pytest.fixture(scope="module")
def trained(fixtures_dir):
    vocab, merges = train_bpe(fixtures_dir / "corpus.en", 600, [EOT])
    return Tokenizer(vocab, merges, [EOT])


@pytest.fixture(scope="module")
def gpt2(fixtures_dir):
    return Tokenizer.from_files(fixtures_dir / "gpt2_vocab.json", fixtures_dir / "gpt2_merges.txt", [EOT])


def test_tokenize_file_matches_encode(trained, fixtures_dir, tmp_path):
    src = tmp_path / "corpus.txt"
    src.write_text(EOT.join([(fixtures_dir / "tinystories_sample.txt").read_text(encoding="utf-8")] * 40))
    expected = trained.encode(src.read_text(encoding="utf-8"))
    for workers in (1, 2):
        out = tmp_path / f"tokens{workers}.npy"
        assert tokenize_file(src, trained, out, num_workers=workers) == len(expected)
        arr = np.load(out, mmap_mode="r")
        assert arr.dtype == np.uint16 and arr.tolist() == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt", "tokens1.npy", "tokens2.npy"]


def test_tokenize_file_refuses_big_vocab_and_leaves_nothing(tmp_path):
    vocab = {i: bytes([i]) for i in range(256)} | {70_000: b"<|big|>"}
    src = tmp_path / "t.txt"
    src.write_text("hello", encoding="utf-8")
    with pytest.raises(ValueError, match="65,536"):
        tokenize_file(src, Tokenizer(vocab, [], ["<|big|>"]), tmp_path / "out.npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


def test_tokenize_file_with_overlapping_specials_and_tiny_chunks(gpt2, tmp_path, monkeypatch):
    specials = [EOT, EOT + EOT, "<|end"]
    tok = Tokenizer(gpt2.vocab, gpt2.merges, specials)
    rng = np.random.default_rng(0)
    words = ["Once", " upon", " a time", "\n\n", "\r\n", " \n", "  ", "héllo", " 42", "<|end", "!"]
    text = "".join("".join(rng.choice(words, 8)) + EOT * rng.integers(1, 6) for _ in range(200))
    src = tmp_path / "t.txt"
    src.write_bytes(text.encode("utf-8"))
    monkeypatch.setattr(chunks, "MIN_CHUNK_BYTES", 1)
    monkeypatch.setattr(token_files, "TOKENIZE_CHUNK_BYTES", 50)
    assert len(chunks.plan_chunks(src, specials, 2, 50)) > 50
    expected = tok.encode(text)
    for workers in (1, 2):
        out = tmp_path / f"tokens{workers}.npy"
        assert tokenize_file(src, tok, out, num_workers=workers) == len(expected)
        assert np.load(out, mmap_mode="r").tolist() == expected


_TOKENIZE = """
from cs336lm.tokenization import Tokenizer
from cs336lm.tokenization.token_files import tokenize_file
tokenizer_dir, src, out = sys.argv[1:]
tokenizer = Tokenizer.from_files(tokenizer_dir + "/vocab.json", tokenizer_dir + "/merges.txt", ["<|endoftext|>"])
tokenizer.encode("warm up " * 1000)  # build the fast path before the mark
mark()
report(tokens=tokenize_file(src, tokenizer, out, num_workers=2))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="peak RSS from /proc/self: Linux")
def test_tokenize_file_parent_memory_is_flat_in_the_file_size(trained, tmp_path):
    # The parent's peak RSS in a child process (tiktoken's native memory included), for a file and one 8x larger.
    trained.save(tmp_path / "tokenizer")
    peaks = {}
    for name, size in (("small", 3_000_000), ("large", 24_000_000)):
        src = tmp_path / f"{name}.txt"
        write_stories(src, size, seed=0)
        peaks[name] = peak_rss_mb(_TOKENIZE, str(tmp_path / "tokenizer"), str(src), str(tmp_path / f"{name}.npy"))
        tokens = np.load(tmp_path / f"{name}.npy", mmap_mode="r")
        assert len(tokens) == peaks[name]["tokens"] > size // 8
        assert tokens[-2:].tolist() == trained.encode(EOT + "\n")
    # In flight: a few chunks' ids (TOKENIZE_CHUNK_BYTES of text each), however big the file; holding the large
    # file's text or ids would add tens of MB.
    assert peaks["large"]["grown_mb"] < 16 and peaks["large"]["grown_mb"] - peaks["small"]["grown_mb"] < 8, peaks


def test_open_tokens_memmaps_uint16(tmp_path):
    path = tmp_path / "tokens.npy"
    np.save(path, np.arange(50, dtype=np.uint16))
    tokens = open_tokens(path, vocab_size=50)
    assert isinstance(tokens, np.memmap) and tokens.dtype == np.uint16
    x, y = get_batch(tokens, 3, 5, "cpu")
    torch.testing.assert_close(y, x + 1)


def test_open_tokens_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        open_tokens(tmp_path / "missing.npy")
    np.save(tmp_path / "wide.npy", np.arange(10, dtype=np.int32))
    with pytest.raises(ValueError, match="holds a 1-D int32 array; expected 1-D uint16"):
        open_tokens(tmp_path / "wide.npy")
    np.save(tmp_path / "square.npy", np.zeros((3, 3), dtype=np.uint16))
    with pytest.raises(ValueError, match="holds a 2-D uint16 array"):
        open_tokens(tmp_path / "square.npy")
    np.save(tmp_path / "bad.npy", np.array([1, 2, 60_000], dtype=np.uint16))
    with pytest.raises(ValueError, match="token id 60000 at position 2 is out of range for vocab_size = 10000"):
        open_tokens(tmp_path / "bad.npy", vocab_size=10_000)


def test_check_tokens_scans_in_chunks_and_checks_length(monkeypatch):
    monkeypatch.setattr(token_files, "_SCAN_CHUNK", 4)
    tokens = np.zeros(23, dtype=np.uint16)
    tokens[[13, 17]] = [500, 700]
    with pytest.raises(ValueError, match="token id 500 at position 13 is out of range for vocab_size = 500"):
        check_tokens(tokens, 8, vocab_size=500)
    check_tokens(tokens, 22, vocab_size=701)
    with pytest.raises(ValueError, match="23 tokens are too few for one batch: context_length \\+ 1 = 24 needed"):
        check_tokens(tokens, 23)
