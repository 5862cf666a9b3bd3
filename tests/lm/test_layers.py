"""cs336lm.lm.layers against torch built-ins."""

import math

import pytest
import torch
import torch.nn.functional as F

from cs336lm.lm.layers import Embedding, Linear, RMSNorm, SiLUFeedForward, SwiGLU, silu


def test_linear_matches_f_linear_and_has_no_bias():
    torch.manual_seed(0)
    layer = Linear(24, 40)
    x = torch.randn(3, 5, 24)
    assert layer.weight.shape == (40, 24)
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight))


def test_linear_init_is_truncated_normal_with_handout_std():
    torch.manual_seed(0)
    layer = Linear(300, 500)
    std = math.sqrt(2 / (300 + 500))
    assert layer.weight.abs().max() <= 3 * std
    assert layer.weight.std().item() == pytest.approx(std * 0.986, rel=0.02)  # truncation at ±3σ shrinks std


def test_embedding_matches_f_embedding():
    torch.manual_seed(0)
    emb = Embedding(50, 16)
    ids = torch.randint(0, 50, (4, 7))
    torch.testing.assert_close(emb(ids), F.embedding(ids, emb.weight))
    assert emb.weight.abs().max() <= 3.0


def test_rmsnorm_matches_torch_rmsnorm():
    torch.manual_seed(0)
    norm = RMSNorm(32, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(32))
    reference = torch.nn.RMSNorm(32, eps=1e-5)
    reference.load_state_dict(norm.state_dict())
    x = torch.randn(2, 5, 32) * 3
    torch.testing.assert_close(norm(x), reference(x), atol=1e-6, rtol=1e-5)


def test_rmsnorm_computes_in_float32_and_returns_input_dtype():
    norm = RMSNorm(8)
    x = torch.full((2, 8), 300.0, dtype=torch.bfloat16)  # x² = 9e4 is fine in fp32, coarse in bf16
    y = norm(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), torch.ones(2, 8))


def test_silu_matches_f_silu():
    x = torch.linspace(-20, 20, 101)
    torch.testing.assert_close(silu(x), F.silu(x))


def test_swiglu_matches_functional_composition():
    torch.manual_seed(0)
    ffn = SwiGLU(16, 40)
    assert ffn.w1.weight.shape == (40, 16) and ffn.w3.weight.shape == (40, 16) and ffn.w2.weight.shape == (16, 40)
    x = torch.randn(3, 4, 16)
    expected = F.linear(F.silu(F.linear(x, ffn.w1.weight)) * F.linear(x, ffn.w3.weight), ffn.w2.weight)
    torch.testing.assert_close(ffn(x), expected)


def test_silu_feed_forward_matches_functional_composition():
    torch.manual_seed(0)
    ffn = SiLUFeedForward(16, 64)
    assert sorted(ffn.state_dict()) == ["w1.weight", "w2.weight"]
    x = torch.randn(3, 4, 16)
    torch.testing.assert_close(ffn(x), F.linear(F.silu(F.linear(x, ffn.w1.weight)), ffn.w2.weight))
