"""Tokenizer: tiktoken parity on the GPT-2 files, both backends, round trips, streaming, file formats."""

import json
import sys

import pytest
import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

from cs336lm.tokenization import Tokenizer, train_bpe
from cs336lm.tokenization.pretokenize import GPT2_PATTERN
from tests.helpers import peak_rss_mb

EOT = "<|endoftext|>"
CORPORA = [
    "address.txt",
    "german.txt",
    "tinystories_sample.txt",
    "corpus.en",
    "special_token_trailing_newlines.txt",
    "special_token_double_newlines_non_whitespace.txt",
]
AWKWARD = [
    "",
    "s",
    "🙃",
    "héllo wörld, ça va?",
    "안녕하세요 세계! 한국어 텍스트",
    f"{EOT}hi{EOT}",
    f"text{EOT}\n\n more text\n\n\n{EOT}",
    "\r\n\t  x  \n",
    "numbers 123456789 and 'quotes' it's we'll",
]


@pytest.fixture(scope="session")
def gpt2(fixtures_dir):
    """Our tokenizer and tiktoken's `gpt2` encoding, both built offline from the fixture files."""
    tok = Tokenizer.from_files(fixtures_dir / "gpt2_vocab.json", fixtures_dir / "gpt2_merges.txt", [EOT])
    ranks = {t: i for i, t in tok.vocab.items() if t != EOT.encode()}
    enc = tiktoken.Encoding(
        name="gpt2-offline", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={EOT: 50256}
    )
    return tok, enc


@pytest.fixture(scope="session")
def gpt2_python(gpt2):
    return Tokenizer(gpt2[0].vocab, gpt2[0].merges, [EOT], backend="python")


@pytest.mark.parametrize("name", CORPORA)
def test_tiktoken_parity_on_fixture_corpora(gpt2, gpt2_python, fixtures_dir, name):
    tok, enc = gpt2
    text = (fixtures_dir / name).read_text(encoding="utf-8")
    expected = enc.encode(text, allowed_special={EOT})
    assert tok.encode(text) == expected
    assert gpt2_python.encode(text) == expected
    assert tok.decode(expected) == text
    with open(fixtures_dir / name, encoding="utf-8") as f:
        assert list(tok.encode_iterable(f)) == expected
    plain = Tokenizer(tok.vocab, tok.merges, backend="python")  # no specials: "<|endoftext|>" is ordinary text
    assert plain.encode(text) == enc.encode_ordinary(text)


def test_fast_path_is_used_and_matches_on_long_text(gpt2, gpt2_python, fixtures_dir):
    tok, enc = gpt2
    text = (fixtures_dir / "corpus.en").read_text(encoding="utf-8")
    assert tok.fast_path_ok() and not gpt2_python.fast_path_ok()
    assert tok.encode(text) == gpt2_python.encode(text) == enc.encode_ordinary(text)
    assert tok._fast is not None


@pytest.mark.parametrize("text", AWKWARD)
def test_round_trip_and_parity_on_awkward_strings(gpt2, gpt2_python, text):
    tok, enc = gpt2
    ids = tok.encode(text)
    assert ids == gpt2_python.encode(text) == enc.encode(text, allowed_special={EOT})
    assert tok.decode(ids) == text


def test_lone_surrogates_become_replacement_characters_like_tiktoken(gpt2, gpt2_python):
    tok, enc = gpt2
    text = "a\ud800b \udfff"
    assert gpt2_python.encode(text) == enc.encode(text) == tok.encode(text * 1000)[: len(enc.encode(text))]
    assert tok.decode(tok.encode(text)) == "a\ufffdb \ufffd"


def test_overlapping_special_tokens_longest_wins(gpt2):
    tok = Tokenizer(gpt2[0].vocab, gpt2[0].merges, [EOT, EOT + EOT])
    ids = tok.encode(f"a{EOT}{EOT}b{EOT}")
    double, single = tok.special_to_id[EOT + EOT], tok.special_to_id[EOT]
    assert double == 50257 and ids.count(double) == 1 and ids.count(single) == 1
    assert tok.decode(ids) == f"a{EOT}{EOT}b{EOT}"


def test_decode_partial_character_does_not_raise(gpt2):
    tok, _ = gpt2
    pieces = [tok.decode([i]) for i in tok.encode("🙃")]
    assert len(pieces) > 1 and "\ufffd" in "".join(pieces)


def test_encode_iterable_carries_pre_tokens_and_specials_across_chunks(gpt2):
    tok, enc = gpt2
    text = (f"Once upon a time\n\n\n  there was{EOT}{EOT}\n\nthe end.   \n" * 2000) + "tail"
    pieces = [text[i : i + 7] for i in range(0, len(text), 7)]  # cuts inside specials and newline runs
    assert list(tok.encode_iterable(pieces)) == enc.encode(text, allowed_special={EOT})


def test_encode_iterable_never_cuts_a_whitespace_run(gpt2):
    tok, enc = gpt2
    text = "word\n\nword \n\tword\r\nword  " * 20_000  # "a\n\n" + "x" pre-tokenizes unlike "a\n\nx"
    pieces = [text[i : i + 1000] for i in range(0, len(text), 1000)]
    assert list(tok.encode_iterable(pieces)) == enc.encode(text)


_STREAM = """
from cs336lm.tokenization import Tokenizer
fixtures, lines = sys.argv[1], int(sys.argv[2])
tok = Tokenizer.from_files(fixtures + "/gpt2_vocab.json", fixtures + "/gpt2_merges.txt", ["<|endoftext|>"])
line = "The quick brown fox jumps over the lazy dog; it's 42 times faster.\\n"
tok.encode(line * 2000)  # build the fast path (tiktoken's native tables) before the mark
mark()
n = sum(1 for _ in tok.encode_iterable(line if i % 50 else "<|endoftext|>\\n" for i in range(lines)))
report(tokens=n)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="peak RSS from /proc/self: Linux")
def test_encode_iterable_streams_in_bounded_memory(fixtures_dir):
    # Peak RSS of a child process while it streams, so tiktoken's native buffers count too (tracemalloc sees only
    # Python's allocations); 8x the text must not need more memory.
    small = peak_rss_mb(_STREAM, str(fixtures_dir), "30000")  # about 2 MB of text
    large = peak_rss_mb(_STREAM, str(fixtures_dir), "240000")  # about 16 MB: its ids alone are 30+ MB as a list
    assert large["tokens"] == 8 * small["tokens"] > 250_000
    assert large["grown_mb"] < 16 and large["grown_mb"] - small["grown_mb"] < 8, (small, large)


@pytest.fixture(scope="module")
def trained(fixtures_dir):
    vocab, merges = train_bpe(fixtures_dir / "corpus.en", 600, [EOT])
    return Tokenizer(vocab, merges, [EOT])


def test_trained_vocab_takes_the_fast_path_with_identical_ids(trained, fixtures_dir):
    text = (fixtures_dir / "tinystories_sample.txt").read_text(encoding="utf-8") * 3
    reference = Tokenizer(trained.vocab, trained.merges, [EOT], backend="python")
    assert trained.fast_path_ok() and trained.encode(text) == reference.encode(text)


def test_rank_inconsistent_vocab_falls_back_to_merge_bpe():
    vocab = {i: bytes([i]) for i in range(256)} | {256: b"bc", 257: b"ab", 258: b"abc"}
    tok = Tokenizer(vocab, [(b"b", b"c"), (b"a", b"b"), (b"ab", b"c")])
    # Merge-BPE stops at [a, bc] ((a, bc) is no merge); tiktoken's rank-BPE would give [abc].
    assert not tok.fast_path_ok()
    assert tok.encode("abc" * 3000)[:2] == [ord("a"), 256]


@pytest.mark.parametrize("which", ["trained", "gpt2"])
def test_saved_files_load_in_hf_and_tiktoken_with_identical_ids(trained, gpt2, fixtures_dir, tmp_path, which):
    tokenizers = pytest.importorskip("tokenizers")
    tok = trained if which == "trained" else gpt2[0]
    vocab_path, merges_path = tok.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merges.txt", "vocab.json"]  # no temp files left
    loaded = Tokenizer.from_files(vocab_path, merges_path, [EOT])
    assert loaded.vocab == tok.vocab and loaded.merges == tok.merges
    text = (fixtures_dir / "tinystories_sample.txt").read_text(encoding="utf-8")

    hf = tokenizers.Tokenizer(tokenizers.models.BPE.from_file(str(vocab_path), str(merges_path)))
    hf.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = tokenizers.decoders.ByteLevel()
    hf.add_special_tokens([EOT])
    ranks = data_gym_to_mergeable_bpe_ranks(str(merges_path), str(vocab_path))
    eot = json.loads(vocab_path.read_text(encoding="utf-8"))[EOT]
    enc = tiktoken.Encoding(name="saved", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={EOT: eot})

    ids = tok.encode(text)
    assert loaded.encode(text) == ids
    assert hf.encode(text).ids == ids
    assert enc.encode(text, allowed_special={EOT}) == ids


def test_from_files_errors_name_file_and_line(gpt2, tmp_path):
    vocab_path, merges_path = gpt2[0].save(tmp_path)
    lines = merges_path.read_text(encoding="utf-8").splitlines(True)
    bad = tmp_path / "bad_merges.txt"
    bad.write_text("".join(lines[:3]) + "Ġthe zzzzqq\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad_merges.txt:4: token 'zzzzqq' is not in"):
        Tokenizer.from_files(vocab_path, bad)
    bad.write_text("#version: 0.2\nĠt\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad_merges.txt:2: expected 'left right'"):
        Tokenizer.from_files(vocab_path, bad)
    with pytest.raises(ValueError, match=r"special token '<\|pad\|>' is not in .*vocab.json"):
        Tokenizer.from_files(vocab_path, merges_path, [EOT, "<|pad|>"])


def test_course_adapter_uses_the_from_scratch_encoder(gpt2, fixtures_dir):
    from tests.adapters import get_tokenizer

    tok, enc = gpt2
    course = get_tokenizer(tok.vocab, tok.merges, [EOT])
    text = (fixtures_dir / "tinystories_sample.txt").read_text(encoding="utf-8") * 4  # long: would go fast
    assert course.encode(text) == enc.encode(text, allowed_special={EOT})
    assert course.backend == "python" and not course.fast_path_ok() and course._fast is None
