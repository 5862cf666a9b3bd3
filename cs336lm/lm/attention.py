"""Attention (handout §3.5): a numerically stable softmax, scaled dot-product attention, rotary position
embeddings (RoFormer, Su et al. 2021) and causal multi-head self-attention with a fused SDPA fast path."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from cs336lm.config import AUTO_ATTENTION_BACKEND
from cs336lm.lm.layers import Linear, RMSNorm, first_out_of_range


def _softmax_(x: Tensor, dim: int) -> Tensor:
    """exp(x - max) / Σ exp(x - max) in place: subtracting the max keeps exp from overflowing."""
    x.sub_(x.amax(dim=dim, keepdim=True)).exp_()
    return x.div_(x.sum(dim=dim, keepdim=True))


class _Softmax(torch.autograd.Function):
    """Softmax with one (x-sized) allocation and the closed-form backward dx = y ⊙ (dy - Σ dy ⊙ y)."""

    @staticmethod
    def forward(ctx, x: Tensor, dim: int) -> Tensor:
        y = _softmax_(x.clone(), dim)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, grad_y: Tensor) -> tuple[Tensor, None]:
        (y,) = ctx.saved_tensors
        return (grad_y - (grad_y * y).sum(dim=ctx.dim, keepdim=True)).mul_(y), None


def softmax(x: Tensor, dim: int) -> Tensor:
    """exp(x - max) / Σ exp(x - max) along `dim`, numerically stable at any magnitude."""
    return _Softmax.apply(x, dim)


def _at_least_float32(x: Tensor) -> Tensor:
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


class _Attention(torch.autograd.Function):
    """softmax(scale · Q Kᵀ + bias) V over (batch, n, d) tensors, with the closed-form backward
    dV = Pᵀ dO, dS = P ⊙ (dO Vᵀ - rowsum(dO ⊙ O)), dQ = scale · dS K, dK = scale · dSᵀ Q.

    Autograd through the scaled, masked softmax keeps several (n_q, n_k) intermediates per head and spends a third
    of a CPU training step in elementwise passes over them. Here the scale and the mask ride in the score matmul
    (baddbmm), the softmax runs in place in that one buffer, which is saved as P, and the backward makes one more
    (n_q, n_k) buffer and updates it in place. The softmax and dS are computed in float32 even under bf16 autocast.
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, scale: float) -> Tensor:
        kt = k.transpose(1, 2)
        scores = torch.bmm(q, kt).mul_(scale) if bias is None else torch.baddbmm(bias, q, kt, alpha=scale)
        probs = _softmax_(_at_least_float32(scores), dim=-1)  # (batch, n_q, n_k)
        out = torch.bmm(probs.to(v.dtype), v)
        ctx.save_for_backward(q, k, v, probs, out)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, Tensor, Tensor, None, None]:
        q, k, v, probs, out = ctx.saved_tensors
        grad_out = grad_out.to(v.dtype)
        grad_v = torch.bmm(probs.transpose(1, 2).to(v.dtype), grad_out)
        # Σ_j dP_ij P_ij = dO_i · Σ_j P_ij V_j = dO_i · O_i: a (n_q, d) product instead of another (n_q, n_k) one.
        row_dot = _at_least_float32(grad_out * out).sum(dim=-1, keepdim=True)
        grad_scores = _at_least_float32(torch.bmm(grad_out, v.transpose(1, 2))).sub_(row_dot).mul_(probs).to(q.dtype)
        grad_q = torch.bmm(grad_scores, k).mul_(ctx.scale)
        grad_k = torch.bmm(grad_scores.transpose(1, 2), q).mul_(ctx.scale)
        return grad_q, grad_k, grad_v, None, None


def attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None = None) -> Tensor:
    """softmax(Q Kᵀ / √d_k + bias) V for (..., n, d) tensors whose leading dims broadcast; `bias` is additive
    (0 where a query may attend to a key, -inf where not) and broadcasts to (..., n_q, n_k)."""
    lead = torch.broadcast_shapes(*(t.shape[:-2] for t in (q, k, v, bias) if t is not None))
    n_q, d_k = q.shape[-2:]

    def flat(t: Tensor) -> Tensor:
        return t.expand(*lead, *t.shape[-2:]).reshape(-1, *t.shape[-2:])  # a view where the layout allows

    if bias is not None:
        bias = bias.to(q.dtype)
        # One (n_q, n_k) bias for every batch broadcasts inside baddbmm; per-batch biases are laid out like q.
        per_batch = any(n != 1 for n in bias.shape[:-2])
        bias = flat(bias) if per_batch else bias.reshape(bias.shape[-2:])
    out = _Attention.apply(flat(q), flat(k), flat(v), bias, 1.0 / math.sqrt(d_k))
    return out.view(*lead, n_q, v.shape[-1])


def scaled_dot_product_attention(
    Q: Float[Tensor, "... n_q d_k"],
    K: Float[Tensor, "... n_k d_k"],
    V: Float[Tensor, "... n_k d_v"],
    mask: Bool[Tensor, "... n_q n_k"] | None = None,
) -> Float[Tensor, "... n_q d_v"]:
    """softmax(Q Kᵀ / √d_k) V; where `mask` is False the query may not attend to the key."""
    bias = None if mask is None else torch.zeros(mask.shape, dtype=Q.dtype, device=Q.device).masked_fill_(
        ~mask, float("-inf"))
    return attend(Q, K, V, bias)


def _complex_viewable(pairs: Tensor) -> bool:
    """Whether view_as_complex accepts `pairs` (..., 2) as is: (re, im) adjacent and every complex aligned."""
    return pairs.stride(-1) == 1 and pairs.storage_offset() % 2 == 0 and all(s % 2 == 0 for s in pairs.stride()[:-1])


class RotaryPositionalEmbedding(nn.Module):
    """Turns each adjacent pair (2i, 2i+1) of a query/key vector at position p by p · theta^(-2i/d_k)."""

    def __init__(self, theta: float, d_k: int, max_seq_len: int, device=None):
        super().__init__()
        if d_k % 2:
            raise ValueError(f"RoPE needs an even head dimension d_k, got d_k = {d_k}")
        self.theta, self.d_k, self.max_seq_len = theta, d_k, max_seq_len
        inv_freq = theta ** (-torch.arange(0, d_k, 2, device=device, dtype=torch.float32) / d_k)  # (d_k/2,)
        angles = torch.outer(torch.arange(max_seq_len, device=device, dtype=torch.float32), inv_freq)
        # Non-persistent: derived from (theta, d_k, max_seq_len), so state dicts keep the course's keys.
        self.register_buffer("cos", angles.cos(), persistent=False)  # (max_seq_len, d_k/2)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(
        self, x: Float[Tensor, "... T d_k"], token_positions: Int[Tensor, "... T"]
    ) -> Float[Tensor, "... T d_k"]:
        if x.shape[-2] > self.max_seq_len:
            raise ValueError(
                f"sequence length {x.shape[-2]} is longer than the RoPE table's max_seq_len = {self.max_seq_len}"
            )
        bad = first_out_of_range(token_positions, self.max_seq_len)
        if bad is not None:
            raise ValueError(f"token position {bad} is outside the RoPE table's range 0 … {self.max_seq_len - 1}")
        # Pair (x_2i, x_2i+1) as the complex number x_2i + i·x_2i+1: multiplying by cos + i·sin gives
        # (x_2i cos - x_2i+1 sin) + i·(x_2i sin + x_2i+1 cos), the rotation, in one complex product whose
        # backward is one more (conjugate) product, instead of strided slices, four products and a stack.
        rotation = torch.complex(self.cos[token_positions].float(), self.sin[token_positions].float())
        pairs = x.float().unflatten(-1, (-1, 2))  # (..., T, d_k/2, 2), a view when x's last dim is contiguous
        if torch.compiler.is_compiling() or not _complex_viewable(pairs):
            pairs = pairs.contiguous()  # inductor fuses the copy away; eager copies only a misaligned view
        rotated = torch.view_as_real(torch.view_as_complex(pairs) * rotation)  # (..., T, d_k/2, 2)
        return rotated.flatten(-2).to(x.dtype)

    def extra_repr(self) -> str:
        return f"theta={self.theta}, d_k={self.d_k}, max_seq_len={self.max_seq_len}"


class KVCache:
    """One attention layer's keys and values of every position so far, for decoding: each new token then costs
    one position's projections instead of the whole context's."""

    def __init__(self):
        self.keys: Tensor | None = None
        self.values: Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.keys is None else self.keys.shape[-2]

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Add (..., nh, t, hs) keys and values; returns all of them so far."""
        self.keys = k if self.keys is None else torch.cat((self.keys, k), dim=-2)
        self.values = v if self.values is None else torch.cat((self.values, v), dim=-2)
        return self.keys, self.values


def resolve_backend(backend: str) -> str:
    """The attention a config's `model.attention_backend` asks for, with `auto` made concrete."""
    return AUTO_ATTENTION_BACKEND if backend == "auto" else backend


class MultiHeadSelfAttention(nn.Module):
    """Causal multi-head self-attention; head h owns rows h·d_k … (h+1)·d_k−1 of the q/k/v projections.

    backend="reference" runs the from-scratch attention above; "sdpa" runs F.scaled_dot_product_attention
    (flash/memory-efficient kernels) on the same parameters, so checkpoints move between the two.

    qk_norm_eps (None = off) adds QK-norm: an RMSNorm over each head's query and key, before RoPE, with head_dim
    gains shared by the heads (RMSNorm, the model's norm, where the papers below use LayerNorm). Dehghani et al.
    (2023, "Scaling Vision Transformers to 22B") normalise queries and keys because attention logits growing
    without bound made the softmax collapse to one-hot and the loss diverge; Wortsman et al. (2023, "Small-scale
    proxies for large-scale Transformer training instabilities") reproduce that instability in small models at
    high learning rates and show QK-norm removes it.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        rope: RotaryPositionalEmbedding | None = None,
        backend: str = "reference",
        qk_norm_eps: float | None = None,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model = {d_model} is not divisible by num_heads = {num_heads}")
        if backend not in ("reference", "sdpa"):
            raise ValueError(f"attention backend {backend!r} is not one of reference, sdpa")
        self.d_model, self.num_heads, self.backend = d_model, num_heads, backend
        self.rope = rope
        self.q_proj = Linear(d_model, d_model, device=device, dtype=dtype)
        self.k_proj = Linear(d_model, d_model, device=device, dtype=dtype)
        self.v_proj = Linear(d_model, d_model, device=device, dtype=dtype)
        self.output_proj = Linear(d_model, d_model, device=device, dtype=dtype)
        if qk_norm_eps is not None:
            hs = d_model // num_heads
            self.q_norm = RMSNorm(hs, eps=qk_norm_eps, device=device, dtype=dtype)
            self.k_norm = RMSNorm(hs, eps=qk_norm_eps, device=device, dtype=dtype)
        self.qk_norm = qk_norm_eps is not None

    def forward(
        self, x: Float[Tensor, "... T d_model"], token_positions: Int[Tensor, "... T"] | None = None,
        kv_cache: KVCache | None = None,
    ) -> Float[Tensor, "... T d_model"]:
        """With a kv_cache, x holds the tokens after the cached ones (default positions continue from there)."""
        *lead, T, _ = x.shape
        hs = self.d_model // self.num_heads
        past = kv_cache.length if kv_cache is not None else 0

        def split_heads(t: Tensor) -> Tensor:
            return t.view(*lead, T, self.num_heads, hs).transpose(-3, -2)  # (..., nh, T, hs)

        q, k, v = split_heads(self.q_proj(x)), split_heads(self.k_proj(x)), split_heads(self.v_proj(x))
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        if self.rope is not None:
            if token_positions is None:
                token_positions = torch.arange(past, past + T, device=x.device)
            elif token_positions.ndim > 1:
                token_positions = token_positions.unsqueeze(-2)  # (..., 1, T): the same positions for every head
            q, k = self.rope(q, token_positions), self.rope(k, token_positions)
        if kv_cache is not None:
            k, v = kv_cache.append(k, v)  # (..., nh, past + T, hs)
        if self.backend == "sdpa" and past == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif self.backend == "sdpa":
            # Query i sits at position past + i and sees keys 0 … past + i.
            causal = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=causal)
        else:
            # The same causal mask as an additive bias: -inf above diagonal `past`, folded into the score matmul.
            causal = torch.full((T, past + T), float("-inf"), dtype=q.dtype, device=x.device).triu_(past + 1)
            y = attend(q, k, v, causal)  # (..., nh, T, hs)
        return self.output_proj(y.transpose(-3, -2).reshape(*lead, T, self.d_model))
