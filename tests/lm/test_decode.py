"""cs336lm.lm.decode: greedy at temperature 0, top-p/top-k truncation, the stop token, seeding, long generations
through a sliding window, the KV cache against the uncached forward, model loading and sample sheets."""

from __future__ import annotations

import json

import pytest
import torch

from cs336lm.lm.decode import _sample, generate
from cs336lm.lm.model import TransformerLM
from cs336lm.lm.optim import AdamW
from cs336lm.problems.samples import write_samples
from cs336lm.training.checkpoint import CheckpointError, load_model, save_checkpoint
from tests.helpers import ByteTokenizer, tiny_config, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_temperature_zero_is_greedy():
    model = tiny_model()
    prompt = [3, 1, 4]
    out = generate(model, prompt, max_new_tokens=8, temperature=0, kv_cache=False)
    context = list(prompt)
    for token in out:
        with torch.no_grad():
            assert token == int(model(torch.tensor([context]))[0, -1].argmax())
        context.append(token)
    assert generate(model, prompt, max_new_tokens=8, temperature=1e-4, seed=1) == out


def test_top_p_keeps_the_smallest_nucleus_and_top_k_the_k_largest():
    logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    draws = lambda **kw: {_sample(logits, 1.0, generator=torch.Generator().manual_seed(i), **kw) for i in range(300)}  # noqa: E731
    assert draws(top_p=1.0, top_k=None) == {0, 1, 2, 3}
    assert draws(top_p=0.7, top_k=None) == {0, 1}  # 0.5 < 0.7, so the nucleus needs the second token
    assert draws(top_p=0.8, top_k=None) == {0, 1}  # 0.5 + 0.3 reaches 0.8 exactly
    assert draws(top_p=0.81, top_k=None) == {0, 1, 2}
    assert draws(top_p=1e-6, top_k=None) == {0}
    assert draws(top_p=1.0, top_k=2) == {0, 1}
    assert draws(top_p=0.7, top_k=1) == {0}


def test_generation_stops_after_the_stop_token():
    model = tiny_model()
    free = generate(model, [5, 6], max_new_tokens=20, temperature=0)
    stop = free[3]
    out = generate(model, [5, 6], max_new_tokens=20, temperature=0, eos_id=stop)
    assert out == free[: free.index(stop) + 1] and out[-1] == stop


def test_sampling_is_seeded():
    model = tiny_model()
    a = generate(model, [1], max_new_tokens=30, seed=7)
    assert a == generate(model, [1], max_new_tokens=30, seed=7)
    assert a != generate(model, [1], max_new_tokens=30, seed=8)


@pytest.mark.parametrize("kv_cache", [True, False])
def test_long_generation_slides_past_the_context_window(kv_cache):
    model = tiny_model()  # context_length 16
    prompt = [1, 2, 3]
    out = generate(model, prompt, max_new_tokens=60, temperature=0, kv_cache=kv_cache)
    assert len(out) == 60
    # Each greedy token is the argmax given the last 16 tokens only, long after the prompt left the window.
    tokens = prompt + out
    with torch.no_grad():
        for i in range(len(prompt), len(tokens)):
            window = tokens[max(0, i - 16):i]
            assert tokens[i] == int(model(torch.tensor([window]))[0, -1].argmax()), i
    sampled = generate(model, prompt, max_new_tokens=300, temperature=0.8, seed=0, kv_cache=kv_cache)
    assert len(sampled) == 300 and all(0 <= t < 32 for t in sampled)


@pytest.mark.parametrize("variant", [{}, {"model.norm_position": "post"}, {"model.pos_emb": "none"},
                                     {"model.ffn": "silu"}, {"model.norm": "none"}])
def test_kv_cache_matches_the_uncached_forward(variant):
    model = tiny_model(**variant)
    for kwargs in ({"temperature": 0}, {"temperature": 1.0, "top_p": 0.9, "seed": 3}):
        cached = generate(model, [4, 2], max_new_tokens=40, **kwargs)
        assert cached == generate(model, [4, 2], max_new_tokens=40, kv_cache=False, **kwargs)


def test_load_model_rebuilds_the_trained_architecture(tmp_path):
    cfg = tiny_config(**{"model.num_layers": 1, "model.pos_emb": "none"})
    model = tiny_model(**{"model.num_layers": 1, "model.pos_emb": "none"})
    save_checkpoint(model, AdamW(model.parameters()), 7, tmp_path / "model.pt", config=cfg.to_dict())
    loaded, config = load_model(tmp_path / "model.pt")
    assert config == cfg.model and not loaded.training
    x = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)


def test_load_model_rejects_weights_of_another_architecture(tmp_path):
    model = tiny_model()
    wrong = tiny_config(**{"model.d_model": 64, "model.num_heads": 4})
    save_checkpoint(model, AdamW(model.parameters()), 1, tmp_path / "model.pt", config=wrong.to_dict())
    with pytest.raises(CheckpointError, match="architecture differs"):
        load_model(tmp_path / "model.pt")
    save_checkpoint(model, AdamW(model.parameters()), 1, tmp_path / "noconfig.pt")
    with pytest.raises(CheckpointError, match="stores no config"):
        load_model(tmp_path / "noconfig.pt")


def test_write_samples_writes_prompt_completion_pairs(tmp_path):
    cfg = tiny_config()
    model = tiny_model()
    save_checkpoint(model, AdamW(model.parameters()), 1, tmp_path / "model.pt", config=cfg.to_dict())
    samples = write_samples(tmp_path / "model.pt", ByteTokenizer(), ["once upon", "the cat"], tmp_path / "s.md",
                            max_new_tokens=256, temperature=1.0, top_p=0.9, seed=0, device="cpu",
                            scores_path=tmp_path / "s.json")
    text = (tmp_path / "s.md").read_text()
    assert [s["prompt"] for s in samples] == ["once upon", "the cat"]
    for s in samples:
        assert s["new_tokens"] <= 256 and (s["stopped_at_eos"] or s["new_tokens"] == 256)
        assert s["prompt"] + s["completion"] in text
        assert 0 < s["loss"] < 10  # nats per token of an untrained model over 32 ids: about ln 32 = 3.5
    assert "## Sample 2" in text and not list(tmp_path.glob(".*tmp"))
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["samples"] == samples and (scores["temperature"], scores["top_p"]) == (1.0, 0.9)


def test_sampling_skips_ids_the_tokenizer_does_not_have(tmp_path):
    # A BPE that ran out of merges has fewer ids than the model's vocab_size: those outputs are never sampled.
    cfg = tiny_config(**{"model.vocab_size": 64})
    torch.manual_seed(0)
    model = TransformerLM(cfg.model).eval()
    with torch.no_grad():
        model.lm_head.weight[:16] *= 0  # ids 0-15 get logit 0, below many of the others
    ids = generate(model, [1, 2, 3], max_new_tokens=64, temperature=1.0, seed=0)
    assert max(ids) >= 32  # without the limit they are drawn
    assert max(generate(model, [1, 2, 3], max_new_tokens=64, temperature=1.0, seed=0, known_ids=32)) < 32
    assert generate(model, [1, 2, 3], max_new_tokens=8, temperature=0, known_ids=16)[0] < 16
    save_checkpoint(model, None, 1, tmp_path / "model.pt", config=cfg.to_dict())
    samples = write_samples(tmp_path / "model.pt", ByteTokenizer(), ["once"], tmp_path / "s.md",
                            max_new_tokens=64, temperature=1.0, top_p=1.0, seed=0, device="cpu")
    assert samples[0]["new_tokens"] > 0
