"""cs336lm.problems.generation_quality: the quality proxies on worked examples, and the temperature × top-p grid on a
real
(tiny, untrained) model."""

from __future__ import annotations

import pytest

from cs336lm.problems.generation_quality import decode_known, distinct_n, grid_summary, repetition_rate, sample_grid
from cs336lm.training.checkpoint import save_checkpoint
from tests.lm.test_decode import ByteTokenizer, tiny_model
from tests.training.test_train import one_thread, tiny_config  # noqa: F401 (fixture)


def test_distinct_n_by_hand():
    assert distinct_n("the cat saw the dog", 1) == 4 / 5
    assert distinct_n("the cat the cat", 2) == 2 / 3  # (the cat), (cat the), (the cat)
    assert distinct_n("The the", 1) == 1 / 2  # case-folded
    assert distinct_n("one", 2) is None


def test_repetition_rate_counts_ngrams_seen_before():
    assert repetition_rate("a b c d e f", 2) == 0.0
    assert repetition_rate("a b a b a b", 2) == 3 / 5  # (a b) (b a) [a b] [b a] [a b]
    assert repetition_rate("a b c", 4) is None


def test_ids_the_tokenizer_lacks_decode_to_a_replacement_character():
    class Partial(ByteTokenizer):
        vocab = {i: bytes([96 + i]) for i in range(1, 27)}  # the letters a…z only

    assert decode_known(Partial(), [3, 1, 20]) == ("cat", 0)
    assert decode_known(Partial(), [3, 40, 1, 20, 41]) == ("c\ufffdat\ufffd", 2)


def test_sample_grid_on_a_real_model(tmp_path):
    model = tiny_model()
    save_checkpoint(model, None, 1, tmp_path / "model.pt", config=tiny_config().to_dict())
    samples = sample_grid(tmp_path / "model.pt", ByteTokenizer(), ["once upon", "the cat"], temperatures=[0.5, 1.5],
                          top_ps=[0.5, 1.0], samples_per_prompt=2, max_new_tokens=12, device="cpu")
    assert len(samples) == 2 * 2 * 2 * 2
    assert set(samples.seed) == {0, 1, 2, 3}  # every setting draws from the same seeds
    for row in samples.itertuples():
        assert row.new_tokens <= 12 and (row.stopped_at_eos or row.new_tokens == 12)
    summary = grid_summary(samples)
    assert summary[["temperature", "top_p"]].values.tolist() == [[0.5, 0.5], [0.5, 1.0], [1.5, 0.5], [1.5, 1.0]]
    assert summary.samples.tolist() == [4] * 4
    first = samples[(samples.temperature == 0.5) & (samples.top_p == 0.5)]
    assert summary.new_tokens.iloc[0] == pytest.approx(first.new_tokens.mean())


def test_grid_summary_leaves_out_samples_too_short_for_a_proxy(tmp_path):
    import pandas as pd

    rows = [{"model": "m", "temperature": 0.5, "top_p": 1.0, "prompt": "p", "seed": s, "new_tokens": n,
             "stopped_at_eos": True, "distinct_1": 1.0, "distinct_2": 1.0, "repetition_4": rep, "unknown_tokens": 0,
             "completion": "c"} for s, n, rep in ((0, 35, 0.04), (1, 5, None))]
    pd.DataFrame(rows).to_csv(tmp_path / "grid.csv", index=False)
    grid = pd.read_csv(tmp_path / "grid.csv", keep_default_na=False)  # as the report reads it: "" for None
    summary = grid_summary(grid)
    assert summary.repetition_4.tolist() == [pytest.approx(0.04)] and summary.new_tokens.tolist() == [20.0]
