"""tests/adapters.py: every course adapter exists with the course's parameter names and is called here: the model
adapters load the stand-in fixture state dict with strict=True and agree with a Transformer written with torch
built-ins, the optimizer adapters agree with torch's AdamW and clip_grad_norm_, and BPE training through its adapter
reproduces the course's reference merges (the tokenizer adapter: tests/tokenization/test_tokenizer.py)."""

import inspect
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cs336lm.tokenization.gpt2_format import str_to_token
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


def adamw_by_hand(params, grads_per_step, lr, betas, eps, weight_decay):
    """The handout's Algorithm 1: moments, the bias-corrected rate α_t, the step, then decay by α·λ."""
    params = [p.detach().clone() for p in params]
    m, v = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    for t, grads in enumerate(grads_per_step, start=1):
        rate = lr * math.sqrt(1 - betas[1] ** t) / (1 - betas[0] ** t)
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            m[i] = betas[0] * m[i] + (1 - betas[0]) * g
            v[i] = betas[1] * v[i] + (1 - betas[1]) * g * g
            p -= rate * m[i] / (v[i].sqrt() + eps)
            p -= lr * weight_decay * p
    return params


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adamw_adapter_steps_as_the_handout_and_torch(weight_decay):
    torch.manual_seed(0)
    model, twin = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)
    twin.load_state_dict(model.state_dict())
    start = [p.detach().clone() for p in model.parameters()]
    hyper = {"lr": 1e-2, "weight_decay": weight_decay, "betas": (0.9, 0.95), "eps": 1e-8}
    optimizer, torch_adamw = adapters.get_adamw_cls()(model.parameters(), **hyper), torch.optim.AdamW(
        twin.parameters(), **hyper)
    grads_per_step = []
    for _ in range(5):
        x = torch.randn(8, 5)
        for net, opt in ((model, optimizer), (twin, torch_adamw)):
            opt.zero_grad()
            net(x).pow(2).sum().backward()
        grads_per_step.append([p.grad.clone() for p in model.parameters()])
        optimizer.step()
        torch_adamw.step()
    for ours, expected in zip(model.parameters(), adamw_by_hand(start, grads_per_step, **hyper), strict=True):
        torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-5)
    if weight_decay == 0:  # torch decays before the step, the handout after: equal only without decay
        for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
            torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)
    assert not torch.equal(model.weight, start[0])


@pytest.mark.parametrize("max_l2_norm", [0.1, 1e3])  # clips, and leaves small gradients alone
def test_gradient_clipping_adapter_matches_torch(max_l2_norm):
    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(shape)) for shape in ((4, 3), (3,), (2, 2))]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    for params in (ours, theirs):
        sum((p * torch.arange(p.numel()).view_as(p)).sum() for p in params[:2]).backward()  # the last has no grad
    norm = math.sqrt(sum(float((p.grad ** 2).sum()) for p in ours[:2]))
    adapters.run_gradient_clipping(iter(ours), max_l2_norm)  # a one-shot iterable, as the course passes it
    torch.nn.utils.clip_grad_norm_(theirs, max_l2_norm)
    for a, b in zip(ours[:2], theirs[:2], strict=True):
        torch.testing.assert_close(a.grad, b.grad)
    assert ours[2].grad is None
    clipped = math.sqrt(sum(float((p.grad ** 2).sum()) for p in ours[:2]))
    assert clipped == pytest.approx(min(norm, max_l2_norm), rel=1e-5)


def test_train_bpe_adapter_reproduces_the_course_reference(fixtures_dir):
    merges_file = fixtures_dir / "train-bpe-reference-merges.txt"
    expected_merges = [tuple(str_to_token(part, "ref") for part in line.split(" "))
                       for line in merges_file.read_text(encoding="utf-8").splitlines()]
    expected_vocab = json.loads((fixtures_dir / "train-bpe-reference-vocab.json").read_text(encoding="utf-8"))
    vocab, merges = adapters.run_train_bpe(fixtures_dir / "corpus.en", 500, ["<|endoftext|>"])
    assert merges == expected_merges
    assert set(vocab) == set(expected_vocab.values())
    assert set(vocab.values()) == {str_to_token(token, "ref") for token in expected_vocab}
