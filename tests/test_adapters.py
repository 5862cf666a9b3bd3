"""tests/adapters.py: every course adapter exists with the course's parameter names, and the model adapters load the
stand-in fixture state dict with strict=True and agree with a Transformer written with torch built-ins."""

import inspect
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests import adapters
from tests.helpers import complex_rope

SIGNATURES = {
    "run_linear": "d_in d_out weights in_features",
    "run_embedding": "vocab_size d_model weights token_ids",
    "run_swiglu": "d_model d_ff w1_weight w2_weight w3_weight in_features",
    "run_scaled_dot_product_attention": "Q K V mask",
    "run_multihead_self_attention": "d_model num_heads q_proj_weight k_proj_weight v_proj_weight o_proj_weight "
    "in_features",
    "run_multihead_self_attention_with_rope": "d_model num_heads max_seq_len theta q_proj_weight k_proj_weight "
    "v_proj_weight o_proj_weight in_features token_positions",
    "run_rope": "d_k theta max_seq_len in_query_or_key token_positions",
    "run_transformer_block": "d_model num_heads d_ff max_seq_len theta weights in_features",
    "run_transformer_lm": "vocab_size context_length d_model num_layers num_heads d_ff rope_theta weights in_indices",
    "run_rmsnorm": "d_model eps weights in_features",
    "run_silu": "in_features",
    "run_get_batch": "dataset batch_size context_length device",
    "run_softmax": "in_features dim",
    "run_cross_entropy": "inputs targets",
    "run_gradient_clipping": "parameters max_l2_norm",
    "get_adamw_cls": "",
    "run_get_lr_cosine_schedule": "it max_learning_rate min_learning_rate warmup_iters cosine_cycle_iters",
    "run_save_checkpoint": "model optimizer iteration out",
    "run_load_checkpoint": "src model optimizer",
    "get_tokenizer": "vocab merges special_tokens",
    "run_train_bpe": "input_path vocab_size special_tokens kwargs",
}


@pytest.mark.parametrize("name", SIGNATURES)
def test_adapter_has_the_course_signature(name):
    assert list(inspect.signature(getattr(adapters, name)).parameters) == SIGNATURES[name].split()


@pytest.fixture(scope="module")
def ts_model(fixtures_dir):
    config = json.loads((fixtures_dir / "ts_tests" / "model_config.json").read_text())
    weights = torch.load(fixtures_dir / "ts_tests" / "model.pt", weights_only=True)
    return config, {k.removeprefix("_orig_mod."): v for k, v in weights.items()}


def reference_block(x, w, num_heads, theta):
    """Pre-norm block from built-ins: F.rms_norm, F.linear, complex RoPE, causal F.scaled_dot_product_attention."""
    B, T, d = x.shape
    h = F.rms_norm(x, (d,), w["ln1.weight"], eps=1e-5)
    q, k, v = (F.linear(h, w[f"attn.{n}_proj.weight"]).view(B, T, num_heads, -1).transpose(1, 2) for n in "qkv")
    positions = torch.arange(T)
    q, k = complex_rope(q, positions, theta), complex_rope(k, positions, theta)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, d)
    x = x + F.linear(y, w["attn.output_proj.weight"])
    h = F.rms_norm(x, (d,), w["ln2.weight"], eps=1e-5)
    gated = F.silu(F.linear(h, w["ffn.w1.weight"])) * F.linear(h, w["ffn.w3.weight"])
    return x + F.linear(gated, w["ffn.w2.weight"])


def reference_lm(ids, weights, config):
    x = F.embedding(ids, weights["token_embeddings.weight"])
    for i in range(config["num_layers"]):
        prefix = f"layers.{i}."
        layer = {k.removeprefix(prefix): v for k, v in weights.items() if k.startswith(prefix)}
        x = reference_block(x, layer, config["num_heads"], config["rope_theta"])
    x = F.rms_norm(x, (config["d_model"],), weights["ln_final.weight"], eps=1e-5)
    return F.linear(x, weights["lm_head.weight"])


def test_transformer_lm_adapter_loads_the_fixture_and_matches_builtins(ts_model):
    config, weights = ts_model
    torch.manual_seed(0)
    ids = torch.randint(0, config["vocab_size"], (4, 12))
    kwargs = {k: config[k] for k in ("vocab_size", "context_length", "d_model", "num_layers", "num_heads", "d_ff",
                                     "rope_theta")}
    logits = adapters.run_transformer_lm(**kwargs, weights=weights, in_indices=ids)
    assert logits.shape == (4, 12, config["vocab_size"])
    torch.testing.assert_close(logits, reference_lm(ids, weights, config), atol=1e-4, rtol=1e-4)
    short = adapters.run_transformer_lm(**kwargs, weights=weights, in_indices=ids[:, :6])
    torch.testing.assert_close(short, logits[:, :6], atol=1e-4, rtol=1e-4)


def test_block_and_layer_adapters_match_builtins_on_fixture_weights(ts_model):
    config, weights = ts_model
    layer = {k.removeprefix("layers.0."): v for k, v in weights.items() if k.startswith("layers.0.")}
    torch.manual_seed(0)
    x = torch.randn(4, 12, 64)
    block = adapters.run_transformer_block(64, 4, 128, 16, 10000.0, layer, x)
    torch.testing.assert_close(block, reference_block(x, layer, 4, 10000.0), atol=1e-5, rtol=1e-5)

    q, k, v, o = (layer[f"attn.{n}_proj.weight"] for n in ("q", "k", "v", "output"))
    mha = adapters.run_multihead_self_attention(64, 4, q, k, v, o, x)
    B, T, d = x.shape
    heads = [F.linear(x, w).view(B, T, 4, 16).transpose(1, 2) for w in (q, k, v)]
    y = F.scaled_dot_product_attention(*heads, is_causal=True).transpose(1, 2).reshape(B, T, d)
    torch.testing.assert_close(mha, F.linear(y, o), atol=1e-6, rtol=1e-5)
    mha_rope = adapters.run_multihead_self_attention_with_rope(64, 4, 16, 10000.0, q, k, v, o, x,
                                                               token_positions=torch.arange(12)[None])
    heads[:2] = [complex_rope(h, torch.arange(12), 10000.0) for h in heads[:2]]
    y = F.scaled_dot_product_attention(*heads, is_causal=True).transpose(1, 2).reshape(B, T, d)
    torch.testing.assert_close(mha_rope, F.linear(y, o), atol=1e-6, rtol=1e-5)

    w1, w2, w3 = (layer[f"ffn.w{i}.weight"] for i in (1, 2, 3))
    torch.testing.assert_close(adapters.run_swiglu(64, 128, w1, w2, w3, x),
                               F.linear(F.silu(F.linear(x, w1)) * F.linear(x, w3), w2))
    torch.testing.assert_close(adapters.run_linear(64, 128, w1, x), F.linear(x, w1))
    torch.testing.assert_close(adapters.run_rmsnorm(64, 1e-5, layer["ln1.weight"], x),
                               F.rms_norm(x, (64,), layer["ln1.weight"], eps=1e-5), atol=1e-6, rtol=1e-5)
    ids = torch.randint(0, 10_000, (4, 12))
    embeddings = weights["token_embeddings.weight"]
    torch.testing.assert_close(adapters.run_embedding(10_000, 64, embeddings, ids), F.embedding(ids, embeddings))


def test_functional_adapters():
    torch.manual_seed(0)
    x = torch.randn(4, 12, 16)
    torch.testing.assert_close(adapters.run_silu(x), F.silu(x))
    torch.testing.assert_close(adapters.run_softmax(x, dim=-1), torch.softmax(x, -1))
    torch.testing.assert_close(adapters.run_rope(16, 10000.0, 12, x, torch.arange(12)),
                               complex_rope(x, torch.arange(12), 10000.0), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(adapters.run_scaled_dot_product_attention(Q=x, K=x, V=x),
                               F.scaled_dot_product_attention(x, x, x))
    logits, targets = torch.randn(8, 5) * 1000, torch.randint(0, 5, (8,))
    torch.testing.assert_close(adapters.run_cross_entropy(logits, targets), F.cross_entropy(logits, targets))
    assert adapters.get_adamw_cls() is adapters.optim.AdamW
    assert adapters.run_get_lr_cosine_schedule(14, 1.0, 0.1, 7, 21) == pytest.approx(0.55)
    batch_x, batch_y = adapters.run_get_batch(np.arange(100), 32, 7, "cpu")
    assert torch.equal(batch_y, batch_x + 1)


def test_checkpoint_adapters_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = adapters.get_adamw_cls()(model.parameters(), lr=1e-3, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-8)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    adapters.run_save_checkpoint(model, optimizer, 11, tmp_path / "ckpt.pt")
    fresh = torch.nn.Linear(3, 2)
    fresh_opt = adapters.get_adamw_cls()(fresh.parameters(), lr=0.5)
    assert adapters.run_load_checkpoint(tmp_path / "ckpt.pt", fresh, fresh_opt) == 11
    assert torch.equal(fresh.weight, model.weight)
    saved, loaded = optimizer.state_dict(), fresh_opt.state_dict()
    assert loaded["param_groups"] == saved["param_groups"]
    for index, state in saved["state"].items():
        assert loaded["state"][index]["step"] == state["step"]
        assert torch.equal(loaded["state"][index]["exp_avg"], state["exp_avg"])
        assert torch.equal(loaded["state"][index]["exp_avg_sq"], state["exp_avg_sq"])
