"""Tokenizer experiments table: one row per (tokenizer, corpus) with the handout §2.7 quantities, each checked
against a count made here (the documents' bytes, their tokens under the from-scratch encoder) and, with an injected
clock, the throughput and the Pile estimate it implies."""

import types

import cs336lm.tokenization.stats as stats
from cs336lm.tokenization import Tokenizer, train_bpe
from cs336lm.tokenization.stats import sample_documents, tokenizer_stats

EOT = "<|endoftext|>"


class FakeClock:
    """perf_counter for the stats module: every reading is `tick` seconds after the previous one, so each encode
    timed between two readings takes exactly `tick` seconds."""

    def __init__(self, tick: float):
        self.now, self.tick = 0.0, tick

    def perf_counter(self) -> float:
        self.now += self.tick
        return self.now


def test_tokenizer_stats_table(fixtures_dir, tmp_path, monkeypatch):
    story = (fixtures_dir / "tinystories_sample.txt").read_text(encoding="utf-8").split(EOT)[0].strip()
    stories = tmp_path / "stories.txt"
    stories.write_text(f"{story}\n{EOT}\n" * 60, encoding="utf-8")  # every sampled document is this story
    corpus = tmp_path / "corpus.txt"  # no separator: one document, the first 64 KiB
    corpus.write_bytes((fixtures_dir / "corpus.en").read_bytes()[:100_000])
    small = Tokenizer(*train_bpe(stories, 300, [EOT]), [EOT])
    large = Tokenizer(*train_bpe(fixtures_dir / "corpus.en", 600, [EOT]), [EOT])
    monkeypatch.setattr(stats, "time", types.SimpleNamespace(perf_counter=FakeClock(0.25).perf_counter))

    table = tokenizer_stats({"small": small, "large": large}, {"stories": stories, "corpus": corpus}, num_documents=5)
    assert sorted(zip(table["tokenizer"], table["corpus"], strict=True)) == [
        ("large", "corpus"), ("large", "stories"), ("small", "corpus"), ("small", "stories")]
    documents = {"stories": [story] * 5, "corpus": [corpus.read_bytes()[: 1 << 16].decode("utf-8")]}
    for row in table.itertuples():
        tokenizer = {"small": small, "large": large}[row.tokenizer]
        by_hand = Tokenizer(tokenizer.vocab, tokenizer.merges, [EOT], backend="python")
        docs = documents[row.corpus]
        assert row.documents == len(docs)
        assert row.bytes == sum(len(d.encode("utf-8")) for d in docs)
        assert row.tokens == sum(len(by_hand.encode(d)) for d in docs)
        assert row.bytes_per_token == row.bytes / row.tokens
        assert row.encoder == "tiktoken core"
        # Each corpus is smaller than both throughput slices, so both encoders time the whole file: size / 0.25 s.
        size = (stories if row.corpus == "stories" else corpus).stat().st_size
        assert row.mb_per_s == row.mb_per_s_python == size / 1e6 / 0.25
        assert row.pile_825gb_hours == row.pile_825gb_hours_python == 825e9 / (size / 0.25) / 3600
        longest = max((t for t in tokenizer.vocab.values() if t != EOT.encode()), key=lambda t: (len(t), t))
        assert (row.longest_token, row.longest_token_bytes) == (longest.decode("utf-8"), len(longest))
    sizes = table.drop_duplicates("corpus").set_index("corpus")
    assert (sizes["throughput_text"] == "whole file").all()
    assert sizes.loc["stories", "throughput_bytes"] == stories.stat().st_size
    # At 1 KB the corpus is timed on a slice of it, starting at a line start.
    sliced = tokenizer_stats({"small": small}, {"corpus": corpus}, num_documents=2, throughput_bytes=1000).iloc[0]
    assert sliced["throughput_text"] == "slice" and 1000 <= sliced["throughput_bytes"] < corpus.stat().st_size
    assert sliced["mb_per_s"] == sliced["throughput_bytes"] / 1e6 / 0.25


def test_sample_documents_is_deterministic_and_never_returns_separators(fixtures_dir):
    path = fixtures_dir / "tinystories_sample.txt"
    docs = sample_documents(path, 3, seed=1)
    assert docs == sample_documents(path, 3, seed=1) and len(docs) == 3
    assert not any(EOT in d for d in docs)
    stories = {d.strip() for d in path.read_text(encoding="utf-8").split(EOT) if d.strip()}
    assert set(docs) <= stories, "each is one whole story of the file"
