"""cs336lm.lm.attention against torch built-ins and a complex-number RoPE."""

import math

import pytest
import torch
import torch.nn.functional as F

from cs336lm.lm.attention import (
    KVCache,
    MultiHeadSelfAttention,
    RotaryPositionalEmbedding,
    scaled_dot_product_attention,
    softmax,
)
from tests.helpers import complex_rope


def reference_mha(x, weights, num_heads, theta=None, positions=None):
    """Causal MHA from torch built-ins: F.linear, complex RoPE and F.scaled_dot_product_attention(is_causal)."""
    B, T, d = x.shape
    hs = d // num_heads
    q, k, v = (F.linear(x, weights[n]).view(B, T, num_heads, hs).transpose(1, 2) for n in ("q", "k", "v"))
    if theta is not None:
        positions = torch.arange(T) if positions is None else positions
        q, k = complex_rope(q, positions, theta), complex_rope(k, positions, theta)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return F.linear(y.transpose(1, 2).reshape(B, T, d), weights["o"])


def test_softmax_matches_torch_and_is_shift_invariant():
    torch.manual_seed(0)
    x = torch.randn(3, 7, 11)
    for dim in (0, 1, -1):
        torch.testing.assert_close(softmax(x, dim), torch.softmax(x, dim))
    torch.testing.assert_close(softmax(x + 100, -1), torch.softmax(x, -1))


def test_softmax_is_stable_at_huge_logits():
    x = torch.tensor([[1e4, 1e4 - 1.0, -1e4], [1e4, 0.0, 0.0]])
    y = softmax(x, -1)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, torch.softmax(x, -1))


@pytest.mark.parametrize("lead", [(4,), (2, 2)], ids=["3d", "4d"])
def test_sdpa_matches_torch_with_mask_and_dv_ne_dk(lead):
    torch.manual_seed(0)
    Q, K, V = torch.randn(*lead, 12, 8), torch.randn(*lead, 16, 8), torch.randn(*lead, 16, 5)
    mask = torch.rand(*lead, 12, 16) > 0.7
    mask[..., 0] = True  # no fully blocked row
    expected = F.scaled_dot_product_attention(Q, K, V, attn_mask=mask)
    torch.testing.assert_close(scaled_dot_product_attention(Q, K, V, mask), expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(scaled_dot_product_attention(Q, K, V), F.scaled_dot_product_attention(Q, K, V))


def test_softmax_gradcheck_and_gradient_matches_torch():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 7, dtype=torch.float64, requires_grad=True)
    for dim in (0, -1):
        assert torch.autograd.gradcheck(lambda t, d=dim: softmax(t, d), (x,))
    x32 = x.detach().float().requires_grad_()
    w = torch.randn(3, 5, 7)
    (ours,) = torch.autograd.grad((softmax(x32, -1) * w).sum(), x32)
    (theirs,) = torch.autograd.grad((torch.softmax(x32, -1) * w).sum(), x32)
    torch.testing.assert_close(ours, theirs)
    assert torch.equal(x32, x.detach().float()), "the input is not modified in place"


@pytest.mark.parametrize("lead", [(3,), (2, 3)], ids=["3d", "4d"])
def test_sdpa_gradcheck_with_mask(lead):
    torch.manual_seed(0)
    Q, K, V = (torch.randn(*lead, n, d, dtype=torch.float64, requires_grad=True) for n, d in ((5, 4), (6, 4), (6, 3)))
    mask = torch.rand(*lead, 5, 6) > 0.5
    mask[..., 0] = True
    assert torch.autograd.gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask), (Q, K, V))
    causal = torch.ones(5, 6, dtype=torch.bool).tril()  # one mask broadcast over every leading dim
    assert torch.autograd.gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, causal), (Q, K, V))
    assert torch.autograd.gradcheck(scaled_dot_product_attention, (Q, K, V))


@pytest.mark.parametrize("mask_shape", [(6, 7), (1, 6, 7), (4, 1, 7), (2, 4, 6, 7)])
def test_sdpa_broadcasts_masks_like_the_formula(mask_shape):
    torch.manual_seed(0)
    Q, K, V = torch.randn(4, 6, 8), torch.randn(4, 7, 8), torch.randn(4, 7, 5)
    mask = torch.rand(*mask_shape) > 0.5
    mask[..., 0] = True
    scores = (Q @ K.transpose(-1, -2) / math.sqrt(8)).masked_fill(~mask, float("-inf"))
    torch.testing.assert_close(scaled_dot_product_attention(Q, K, V, mask), torch.softmax(scores, -1) @ V)


def test_sdpa_gradients_match_torch():
    torch.manual_seed(0)
    Q, K, V = (torch.randn(2, 4, 16, 8, requires_grad=True) for _ in range(3))
    causal = torch.ones(16, 16, dtype=torch.bool).tril()
    w = torch.randn(2, 4, 16, 8)
    ours = torch.autograd.grad((scaled_dot_product_attention(Q, K, V, causal) * w).sum(), (Q, K, V))
    theirs = torch.autograd.grad((F.scaled_dot_product_attention(Q, K, V, is_causal=True) * w).sum(), (Q, K, V))
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_rope_matches_complex_formulation_and_broadcasts_positions():
    torch.manual_seed(0)
    rope = RotaryPositionalEmbedding(10000.0, 64, 12)
    x = torch.randn(4, 12, 64)
    positions = torch.arange(12)
    torch.testing.assert_close(rope(x, positions), complex_rope(x, positions, 10000.0), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(rope(x, positions)[:, 0], x[:, 0])  # position 0 is the identity
    shuffled = torch.randint(0, 12, (4, 12))
    torch.testing.assert_close(rope(x, shuffled), complex_rope(x, shuffled, 10000.0), atol=1e-6, rtol=1e-5)
    assert rope.state_dict() == {}  # cos/sin caches are non-persistent


def test_rope_rejects_odd_dims_long_sequences_and_bad_positions():
    with pytest.raises(ValueError, match="even head dimension d_k, got d_k = 7"):
        RotaryPositionalEmbedding(10000.0, 7, 16)
    rope = RotaryPositionalEmbedding(10000.0, 8, 16)
    with pytest.raises(ValueError, match="sequence length 17 is longer than the RoPE table's max_seq_len = 16"):
        rope(torch.randn(1, 17, 8), torch.arange(17))
    with pytest.raises(ValueError, match="token position 20 is outside the RoPE table's range 0 … 15"):
        rope(torch.randn(1, 2, 8), torch.tensor([0, 20]))


def _mha_and_weights(d_model=64, num_heads=4, rope=None, backend="reference"):
    torch.manual_seed(0)
    mha = MultiHeadSelfAttention(d_model, num_heads, rope=rope, backend=backend)
    weights = {"q": mha.q_proj.weight, "k": mha.k_proj.weight, "v": mha.v_proj.weight, "o": mha.output_proj.weight}
    return mha, weights


def test_mha_matches_builtin_reference():
    mha, weights = _mha_and_weights()
    x = torch.randn(4, 12, 64)
    assert sorted(mha.state_dict()) == [f"{n}.weight" for n in ("k_proj", "output_proj", "q_proj", "v_proj")]
    torch.testing.assert_close(mha(x), reference_mha(x, weights, 4), atol=1e-6, rtol=1e-5)


def test_mha_is_causal():
    mha, _ = _mha_and_weights()
    x = torch.randn(1, 12, 64)
    changed = x.clone()
    changed[:, 8:] += 1.0
    torch.testing.assert_close(mha(x)[:, :8], mha(changed)[:, :8])


def test_mha_with_rope_matches_builtin_reference():
    mha, weights = _mha_and_weights(rope=RotaryPositionalEmbedding(10000.0, 16, 16))
    x = torch.randn(4, 12, 64)
    expected = reference_mha(x, weights, 4, theta=10000.0)
    torch.testing.assert_close(mha(x), expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(mha(x, torch.arange(12)[None]), expected, atol=1e-6, rtol=1e-5)  # [1, seq]
    positions = torch.randint(0, 16, (4, 12))  # per-sequence positions broadcast over heads
    expected = reference_mha(x, weights, 4, theta=10000.0, positions=positions[:, None])
    torch.testing.assert_close(mha(x, positions), expected, atol=1e-6, rtol=1e-5)


def test_sdpa_backend_equals_reference_backend():
    rope = RotaryPositionalEmbedding(10000.0, 16, 16)
    reference, _ = _mha_and_weights(rope=rope)
    fast, _ = _mha_and_weights(rope=rope, backend="sdpa")
    fast.load_state_dict(reference.state_dict())
    x = torch.randn(2, 16, 64, requires_grad=True)
    y_ref, y_fast = reference(x), fast(x)
    torch.testing.assert_close(y_fast, y_ref, atol=1e-6, rtol=1e-5)
    (g_ref,) = torch.autograd.grad(y_ref.square().sum(), x)
    (g_fast,) = torch.autograd.grad(y_fast.square().sum(), x)
    torch.testing.assert_close(g_fast, g_ref, atol=1e-5, rtol=1e-5)


def test_mha_rejects_bad_shapes_and_backends():
    with pytest.raises(ValueError, match="d_model = 30 is not divisible by num_heads = 4"):
        MultiHeadSelfAttention(30, 4)
    with pytest.raises(ValueError, match="backend 'flash' is not one of reference, sdpa"):
        MultiHeadSelfAttention(32, 4, backend="flash")


@pytest.mark.parametrize("backend", ["reference", "sdpa"])
def test_kv_cache_fed_in_pieces_equals_the_full_causal_forward(backend):
    torch.manual_seed(0)
    rope = RotaryPositionalEmbedding(10000.0, 16, 32)
    attn = MultiHeadSelfAttention(64, 4, rope=rope, backend=backend)
    x = torch.randn(2, 11, 64)
    cache = KVCache()
    pieces = [attn(x[:, a:b], kv_cache=cache) for a, b in ((0, 5), (5, 6), (6, 11))]  # prompt, then new tokens
    assert cache.length == 11
    torch.testing.assert_close(torch.cat(pieces, dim=1), attn(x), atol=1e-5, rtol=1e-5)
