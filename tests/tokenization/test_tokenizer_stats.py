"""Tokenizer experiments table: one row per (tokenizer, corpus) with the handout §2.7 quantities."""

from cs336lm.tokenization import Tokenizer, train_bpe
from cs336lm.tokenization.stats import sample_documents, tokenizer_stats

EOT = "<|endoftext|>"


def test_tokenizer_stats_table(fixtures_dir, tmp_path):
    stories = tmp_path / "stories.txt"
    stories.write_text((fixtures_dir / "tinystories_sample.txt").read_text(encoding="utf-8") * 20, encoding="utf-8")
    corpus = fixtures_dir / "corpus.en"
    small = Tokenizer(*train_bpe(stories, 300, [EOT]), [EOT])
    large = Tokenizer(*train_bpe(corpus, 600, [EOT]), [EOT])
    table = tokenizer_stats({"small": small, "large": large}, {"stories": stories, "corpus": corpus}, num_documents=5)
    assert len(table) == 4 and set(table["tokenizer"]) == {"small", "large"}
    assert (table["bytes_per_token"] > 1).all() and (table["mb_per_s"] > 0).all()
    assert (table["pile_825gb_hours"] > 0).all() and (table["mb_per_s_python"] > 0).all()
    assert set(table["encoder"]) == {"tiktoken core"}
    # stories (20 copies of the sample, under 1 MB) is timed whole; at 1 KB the corpus is timed on a slice of it
    sizes = table.drop_duplicates("corpus").set_index("corpus")
    assert sizes.loc["stories", "throughput_text"] == "whole file"
    assert sizes.loc["stories", "throughput_bytes"] == stories.stat().st_size
    sliced = tokenizer_stats({"small": small}, {"corpus": corpus}, num_documents=2, throughput_bytes=1000).iloc[0]
    assert sliced["throughput_text"] == "slice" and 1000 <= sliced["throughput_bytes"] < corpus.stat().st_size
    row = table.set_index(["tokenizer", "corpus"]).loc[("large", "stories")]
    assert row["longest_token_bytes"] == max(len(t) for t in large.vocab.values() if t != EOT.encode())
    assert row["documents"] == 5  # stories are separated by <|endoftext|>


def test_sample_documents_is_deterministic_and_never_returns_separators(fixtures_dir):
    path = fixtures_dir / "tinystories_sample.txt"
    docs = sample_documents(path, 3, seed=1)
    assert docs == sample_documents(path, 3, seed=1) and len(docs) == 3
    assert not any(EOT in d for d in docs)
