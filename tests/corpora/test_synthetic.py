"""Synthetic corpora: byte-exact determinism, TinyStories V2 format, variety, in-story consistency, atomic writes."""

import hashlib
import re

import pytest

from cs336lm.corpora import synthetic
from cs336lm.corpora.synthetic import write_stories
from cs336lm.corpora.words import BOY_NAMES, GIRL_NAMES

EOT = "<|endoftext|>"
NAMES = set(GIRL_NAMES) | set(BOY_NAMES)
GOLDEN_SHA256 = "7a2fe4e9991b8c61d3d1d463bdf85340e1ccebe6486ba18a912b6b9ed7ccbe12"  # see test_golden_bytes


def _write(tmp_path, num_bytes=200_000, seed=0, **kwargs) -> bytes:
    out = tmp_path / f"corpus_{num_bytes}_{seed}_{kwargs.get('style', 'tinystories')}.txt"
    write_stories(out, num_bytes, seed, **kwargs)
    return out.read_bytes()


def _documents(data: bytes, token: str = EOT) -> list[str]:
    text = data.decode()
    assert text.endswith(f"\n{token}\n"), "every document, the last included, ends with the special token line"
    docs = text.split(f"\n{token}\n")
    assert docs[-1] == ""
    return docs[:-1]


@pytest.fixture(scope="module")
def megabyte(tmp_path_factory) -> list[str]:
    return _documents(_write(tmp_path_factory.mktemp("mb"), 1_000_000, seed=7))


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = _write(tmp_path / "a", seed=3)
    assert a == _write(tmp_path / "b", seed=3)
    assert a != _write(tmp_path / "c", seed=4)


def test_golden_bytes(tmp_path):
    """Pins the corpus: a template or word-list edit changes every downstream result, so it must be deliberate.

    The same digest on Python 3.10-3.13 is what makes the demo reproducible across interpreters.
    """
    data = b"".join(_write(tmp_path, 100_000, seed=42, style=style) for style in synthetic.STYLES)
    assert hashlib.sha256(data).hexdigest() == GOLDEN_SHA256


def test_larger_size_only_appends_documents(tmp_path):
    small, large = _write(tmp_path, 50_000), _write(tmp_path, 150_000)
    assert large.startswith(small)


@pytest.mark.parametrize("num_bytes", [1, 999, 100_000])
def test_size_at_least_requested_and_at_most_one_more_document(tmp_path, num_bytes):
    data = _write(tmp_path, num_bytes)
    assert num_bytes <= len(data) < num_bytes + 3_000
    last_doc = len(_documents(data)[-1].encode()) + len(f"\n{EOT}\n")
    assert len(data) - last_doc < num_bytes, "writing stops at the first document that reaches num_bytes"


def test_documents_split_cleanly_on_the_special_token(megabyte):
    assert len(megabyte) > 1000
    for doc in megabyte:
        assert doc.strip() == doc and doc, "no empty documents or stray whitespace around the token"
        assert EOT not in doc and "<|" not in doc
        assert doc[-1] in ".!\"?", doc


def test_custom_special_token(tmp_path):
    docs = _documents(_write(tmp_path, 20_000, special_token="<|doc|>"), "<|doc|>")
    assert docs and all(EOT not in d for d in docs)


def test_vocabulary_and_structure_are_varied(megabyte):
    text = "\n".join(megabyte)
    words = set(re.findall(r"[A-Za-z']+", text))
    assert len(words) >= 200
    assert len(NAMES & words) >= 50
    assert len({d.split(".")[0] for d in megabyte}) >= 500, "opening sentences vary"
    assert '"' in text and "?" in text and "!" in text and "\n\n" in text
    assert re.search(r"\d", text), "occasional numbers"


def test_protagonist_named_in_first_sentence_recurs(megabyte):
    for doc in megabyte[:2000]:
        first_sentence = re.split(r"(?<=[.!?])\s", doc, maxsplit=1)[0]
        named = [w for w in re.findall(r"[A-Z][a-z]+", first_sentence) if w in NAMES]
        assert len(named) == 1, first_sentence
        assert len(re.findall(rf"\b{named[0]}\b", doc)) >= 3, doc
        is_girl = f"girl named {named[0]}" in doc or f"girl called {named[0]}" in doc
        is_boy = f"boy named {named[0]}" in doc or f"boy called {named[0]}" in doc
        # Only the protagonist is ever "-self", so it must match the protagonist's pronoun.
        assert not (is_girl and "himself" in doc) and not (is_boy and "herself" in doc), doc


def test_web_style_is_a_different_register(tmp_path):
    stories = _write(tmp_path, 200_000).decode()
    web_docs = _documents(_write(tmp_path, 200_000, style="web"))
    web = "\n".join(web_docs)
    assert "https://" in web and re.search(r"\b(19|20)\d\d\b", web) and re.search(r"^1\. ", web, re.M)
    assert "Once upon a time" not in web and "Once upon a time" in stories
    story_words = set(re.findall(r"[a-z]+", stories))
    web_words = set(re.findall(r"[a-z]+", web))
    assert len(web_words - story_words) >= 200
    assert len(web_docs) >= 100


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_bytes": 0}, "num_bytes"),
        ({"num_bytes": -5}, "num_bytes"),
        ({"num_bytes": 1.5}, "num_bytes"),
        ({"num_bytes": True}, "num_bytes"),
        ({"style": "owt"}, "'owt'.*tinystories, web"),
        ({"special_token": ""}, "special_token"),
        ({"seed": "0"}, "seed"),
    ],
)
def test_bad_arguments_raise_and_write_nothing(tmp_path, kwargs, match):
    args = {"num_bytes": 1000, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=match):
        write_stories(tmp_path / "out.txt", **args)
    assert list(tmp_path.iterdir()) == []


def test_no_temp_file_left_on_success_or_failure(tmp_path, monkeypatch):
    write_stories(tmp_path / "ok.txt", 10_000, 0)
    assert [p.name for p in tmp_path.iterdir()] == ["ok.txt"]

    def failing_documents(seed, style):
        yield "a whole document"
        raise RuntimeError("generator died")

    monkeypatch.setattr(synthetic, "iter_documents", failing_documents)
    with pytest.raises(RuntimeError, match="generator died"):
        write_stories(tmp_path / "bad.txt", 10_000_000, 0)
    assert [p.name for p in tmp_path.iterdir()] == ["ok.txt"]


def test_the_demo_bpe_reaches_the_vocabulary_it_asks_for(tmp_path):
    """Each demo corpus has enough distinct words that BPE trains to the size the demo asks for, rather than running
    out of pairs to merge."""
    import yaml

    from cs336lm.tokenization import train_bpe
    from tests.workflow.test_workflow import REPO

    data = yaml.safe_load((REPO / "profiles/demo/demo.yaml").read_text())["data"]
    for name, spec in data.items():
        corpus = spec["train"]["synthetic"]
        path = tmp_path / f"{name}.txt"
        write_stories(path, corpus["bytes"], corpus["seed"], style=corpus["style"])
        vocab, _ = train_bpe(path, spec["tokenizer"]["vocab_size"], spec["tokenizer"]["special_tokens"])
        assert len(vocab) == spec["tokenizer"]["vocab_size"], name
