"""cs336lm.lm.model: block semantics, every ablation, parameter and FLOP accounting, bad input."""

import itertools

import pytest
import torch

from cs336lm.config import ConfigError, ModelConfig
from cs336lm.lm.losses import cross_entropy
from cs336lm.lm.model import TransformerBlock, TransformerLM, count_parameters, flops_per_token
from cs336lm.lm.optim import AdamW

TINY = dict(vocab_size=50, context_length=16, d_model=32, num_layers=2, num_heads=4, d_ff=64)
ABLATIONS = list(itertools.product(("rmsnorm", "none"), ("pre", "post"), ("rope", "none"), ("swiglu", "silu")))


@pytest.mark.parametrize("norm,norm_position,pos_emb,ffn", ABLATIONS)
def test_every_ablation_builds_and_trains_one_step(norm, norm_position, pos_emb, ffn):
    torch.manual_seed(0)
    config = ModelConfig(**TINY, norm=norm, norm_position=norm_position, pos_emb=pos_emb, ffn=ffn)
    model = TransformerLM(config)
    ids = torch.randint(0, 50, (2, 11))
    inputs, targets = ids[:, :-1], ids[:, 1:]
    logits = model(inputs)
    assert logits.shape == (2, 10, 50)
    loss = cross_entropy(logits, targets)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.any() for p in model.parameters())
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    AdamW(model.parameters(), lr=1e-2).step()
    assert all(not torch.equal(p, before[name]) for name, p in model.named_parameters()), "every weight moved"
    with torch.no_grad():
        assert cross_entropy(model(inputs), targets) < loss, "the step lowered the loss on its batch"
    keys = set(model.state_dict())
    assert ("ln_final.weight" in keys) == (norm == "rmsnorm")
    assert ("layers.0.ln1.weight" in keys) == (norm == "rmsnorm")
    assert ("layers.0.ffn.w3.weight" in keys) == (ffn == "swiglu")


def test_lm_state_dict_has_the_course_keys():
    model = TransformerLM(ModelConfig(**TINY))
    block = ["attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.output_proj", "ln1", "ln2", "ffn.w1", "ffn.w2",
             "ffn.w3"]
    expected = {"token_embeddings.weight", "ln_final.weight", "lm_head.weight"}
    expected |= {f"layers.{i}.{name}.weight" for i in range(2) for name in block}
    assert set(model.state_dict()) == expected


def test_pre_and_post_norm_blocks_follow_their_formulas():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 32)
    pre = TransformerBlock(ModelConfig(**TINY))
    y = x + pre.attn(pre.ln1(x))
    torch.testing.assert_close(pre(x), y + pre.ffn(pre.ln2(y)))
    post = TransformerBlock(ModelConfig(**TINY, norm_position="post"))
    y = post.ln1(x + post.attn(x))
    torch.testing.assert_close(post(x), post.ln2(y + post.ffn(y)))


def test_lm_shares_one_rope_table_and_handles_short_sequences():
    model = TransformerLM(ModelConfig(**TINY))
    assert all(layer.attn.rope is model.rope for layer in model.layers)
    ids = torch.randint(0, 50, (2, 16))
    torch.testing.assert_close(model(ids[:, :6]), model(ids)[:, :6], atol=1e-5, rtol=1e-5)  # causal


def test_sdpa_backend_lm_equals_reference_lm():
    torch.manual_seed(0)
    reference = TransformerLM(ModelConfig(**TINY))
    fast = TransformerLM(ModelConfig(**TINY, attention_backend="sdpa"))
    fast.load_state_dict(reference.state_dict())
    ids = torch.randint(0, 50, (2, 16))
    torch.testing.assert_close(fast(ids), reference(ids), atol=1e-5, rtol=1e-5)


def _count(config: ModelConfig) -> dict[str, int]:
    with torch.device("meta"):  # shapes only: skips initialising millions of weights
        return count_parameters(TransformerLM(config))


def test_silu_ffn_at_4x_is_parameter_matched_to_swiglu():
    swiglu = _count(ModelConfig(d_ff=1344))["non_embedding"]
    silu = _count(ModelConfig(ffn="silu", d_ff=2048))["non_embedding"]
    assert abs(silu - swiglu) / swiglu < 0.02


def test_tinystories_parameter_count_by_hand():
    V, d, L, d_ff = 10_000, 512, 4, 1344
    embedding = V * d  # 5,120,000
    per_layer = 4 * d * d + 3 * d * d_ff + 2 * d  # q,k,v,o + w1,w2,w3 + ln1,ln2 = 1,048,576 + 2,064,384 + 1,024
    lm_head_and_final_norm = V * d + d  # 5,120,512
    assert per_layer == 3_113_984
    expected_total = embedding + L * per_layer + lm_head_and_final_norm  # 22,696,448
    assert expected_total == 22_696_448
    assert _count(ModelConfig()) == {"total": expected_total, "non_embedding": expected_total - embedding}


def test_flops_per_token_by_hand():
    V, T, d, L, d_ff = 10_000, 256, 512, 4, 1344
    projections = 4 * 2 * d * d  # q, k, v, output: 2,097,152
    attention = 2 * 2 * T * d  # Q Kᵀ and scores · V: 524,288
    ffn = 3 * 2 * d * d_ff  # 4,128,768
    forward = L * (projections + attention + ffn) + 2 * d * V  # 27,000,832 + 10,240,000
    assert flops_per_token(ModelConfig()) == 3 * forward == 111_722_496
    assert flops_per_token(ModelConfig(ffn="silu", d_ff=2048)) == 3 * (L * (projections + attention + 4 * d * 2048)
                                                                      + 2 * d * V)


def test_config_rejects_bad_heads():
    with pytest.raises(ConfigError, match="d_model = 30 is not divisible by model.num_heads = 4"):
        ModelConfig(**{**TINY, "d_model": 30})
    with pytest.raises(ConfigError, match="RoPE needs an even head dimension.* = 3"):
        ModelConfig(**{**TINY, "d_model": 12})


def test_lm_rejects_long_context_and_bad_token_ids():
    model = TransformerLM(ModelConfig(**TINY))
    with pytest.raises(ValueError, match="sequence length 17 is longer than the model's context_length = 16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="token id 50 is out of range for vocab_size = 50"):
        model(torch.tensor([[1, 2, 50, 3]]))
    with pytest.raises(ValueError, match="token id -1 is out of range for vocab_size = 50"):
        model(torch.tensor([[1, -1]]))
