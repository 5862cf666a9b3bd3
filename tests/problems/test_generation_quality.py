"""cs336lm.problems.generation_quality: the quality proxies on worked examples, the comparison with held-out corpus
text and its verdict, a sample's own loss against a plain cross-entropy, and the temperature × top-p grid on a real
(tiny, untrained) model."""

from __future__ import annotations

import pytest
import torch

from cs336lm.problems.generation_quality import (
    compare_with_corpus,
    completion_loss,
    decode_known,
    distinct_n,
    grid_summary,
    incoherence_signs,
    repetition_rate,
    sample_grid,
    unseen_rate,
)
from cs336lm.training.checkpoint import save_checkpoint
from tests.helpers import ByteTokenizer, tiny_config, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_distinct_n_by_hand():
    assert distinct_n("the cat saw the dog", 1) == 4 / 5
    assert distinct_n("the cat the cat", 2) == 2 / 3  # (the cat), (cat the), (the cat)
    assert distinct_n("The the", 1) == 1 / 2  # case-folded
    assert distinct_n("one", 2) is None


def test_repetition_rate_counts_ngrams_seen_before():
    assert repetition_rate("a b c d e f", 2) == 0.0
    assert repetition_rate("a b a b a b", 2) == 3 / 5  # (a b) (b a) [a b] [b a] [a b]
    assert repetition_rate("a b c", 4) is None


def test_unseen_rate_counts_word_pairs_real_text_lacks():
    seen = {("the", "cat"), ("cat", "sat")}
    assert unseen_rate("The cat sat", seen) == 0.0
    assert unseen_rate("the cat ran home", seen) == 2 / 3  # (cat ran), (ran home)
    assert unseen_rate("cat", seen) is None


STORY = "Once upon a time there was a little dog named Tom. Tom liked to run in the park with his friend Sue. "


def test_corpus_text_passes_and_word_salad_fails():
    corpus = "<|endoftext|>".join([STORY] * 20)
    real = compare_with_corpus([STORY], corpus)
    assert real["samples"]["unseen_2"] == real["corpus"]["unseen_2"] == 0.0
    assert real["samples"]["words"] == real["corpus"]["words"] == len(STORY.split())
    assert incoherence_signs(real["samples"], real["corpus"]) == []
    salad = " ".join(sorted(STORY.split()))  # the same words, alphabetically
    mixed = compare_with_corpus([salad], corpus)
    signs = incoherence_signs(mixed["samples"], mixed["corpus"])
    assert len(signs) == 1 and signs[0].startswith(f"{mixed['samples']['unseen_2']:.0%} of their word pairs never")
    loop = compare_with_corpus(["the dog ran home " * 10], corpus)
    assert loop["samples"]["repetition_4"] == pytest.approx(33 / 37)  # 37 4-grams, the first 4 new
    assert any("4-grams repeat" in sign for sign in incoherence_signs(loop["samples"], loop["corpus"]))


def test_signs_need_more_than_the_margin():
    corpus = {"unseen_2": 0.30, "repetition_4": 0.02}
    assert incoherence_signs({"unseen_2": 0.39, "repetition_4": 0.11}, corpus) == []
    assert len(incoherence_signs({"unseen_2": 0.41, "repetition_4": 0.13}, corpus)) == 2
    assert incoherence_signs({"unseen_2": None, "repetition_4": None}, corpus) == []


def _cross_entropy_by_hand(model, ids, start):
    """Mean cross-entropy of ids[start:], each token predicted from the ids before it (at most context_length)."""
    ctx, losses = model.config.context_length, []
    for i in range(start, len(ids)):
        window = torch.tensor([ids[max(0, i - ctx):i]])
        losses.append(torch.nn.functional.cross_entropy(model(window)[0, -1:], torch.tensor([ids[i]])).item())
    return sum(losses) / len(losses)


@pytest.mark.parametrize("prompt_length, new", [(3, 5), (3, 30), (20, 4)])  # in one window, sliding, long prompt
def test_completion_loss_is_the_cross_entropy_of_the_new_tokens(prompt_length, new):
    model = tiny_model()  # context 16
    ids = torch.randint(1, 32, (prompt_length + new,), generator=torch.Generator().manual_seed(1)).tolist()
    with torch.no_grad():
        expected = _cross_entropy_by_hand(model, ids, prompt_length)
    assert completion_loss(model, ids[:prompt_length], ids[prompt_length:]) == pytest.approx(expected, rel=1e-5)
    assert completion_loss(model, ids[:prompt_length], []) is None


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
    assert (samples.sample_loss > 0).all()
    first = samples[(samples.temperature == 0.5) & (samples.top_p == 0.5)]
    assert summary.new_tokens.iloc[0] == pytest.approx(first.new_tokens.mean())


def test_grid_summary_leaves_out_samples_too_short_for_a_proxy(tmp_path):
    import pandas as pd

    rows = [{"model": "m", "temperature": 0.5, "top_p": 1.0, "prompt": "p", "seed": s, "new_tokens": n,
             "stopped_at_eos": True, "distinct_1": 1.0, "distinct_2": 1.0, "repetition_4": rep, "unknown_tokens": 0,
             "sample_loss": 2.0, "completion": "c"} for s, n, rep in ((0, 35, 0.04), (1, 5, None))]
    pd.DataFrame(rows).to_csv(tmp_path / "grid.csv", index=False)
    grid = pd.read_csv(tmp_path / "grid.csv", keep_default_na=False)  # as the report reads it: "" for None
    summary = grid_summary(grid)
    assert summary.repetition_4.tolist() == [pytest.approx(0.04)] and summary.new_tokens.tolist() == [20.0]
