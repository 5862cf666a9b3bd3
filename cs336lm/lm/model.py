"""The Transformer language model (handout §3.5–§3.6), its §7.3 ablations and §7.5 modifications, assembled from
cs336lm.lm.layers and cs336lm.lm.attention; plus parameter and FLOP accounting for logging and MFU."""

from __future__ import annotations

import math

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from cs336lm.config import ModelConfig
from cs336lm.lm import accounting
from cs336lm.lm.attention import KVCache, MultiHeadSelfAttention, RotaryPositionalEmbedding, resolve_backend
from cs336lm.lm.layers import (
    Embedding,
    Linear,
    ReLUSquaredFeedForward,
    RMSNorm,
    SiLUFeedForward,
    SwiGLU,
    first_out_of_range,
)

FEED_FORWARD = {"swiglu": SwiGLU, "silu": SiLUFeedForward, "relu2": ReLUSquaredFeedForward}


def _norm(config: ModelConfig) -> nn.Module:
    return RMSNorm(config.d_model, eps=config.rms_eps) if config.norm == "rmsnorm" else nn.Identity()


def softcap(logits: Tensor, cap: float) -> Tensor:
    """cap · tanh(logits / cap), in float32 (bf16 tanh near ±1 is coarse): the logits stay inside (-cap, cap) and
    are nearly unchanged well below it. Gemma 2 (Gemma Team 2024) caps its final logits at 30 this way."""
    return cap * torch.tanh(logits.float() / cap)


class TransformerBlock(nn.Module):
    """Pre-norm: x + attn(ln1(x)), then + ffn(ln2(x)). Post-norm: ln1(x + attn(x)), then ln2(x + ffn(x))."""

    def __init__(self, config: ModelConfig, rope: RotaryPositionalEmbedding | None = None):
        super().__init__()
        if config.pos_emb == "rope" and rope is None:
            rope = RotaryPositionalEmbedding(config.rope_theta, config.head_dim, config.context_length)
        self.pre_norm = config.norm_position == "pre"
        self.ln1, self.ln2 = _norm(config), _norm(config)
        self.attn = MultiHeadSelfAttention(
            config.d_model, config.num_heads, rope=rope if config.pos_emb == "rope" else None,
            backend=resolve_backend(config.attention_backend),
            qk_norm_eps=config.rms_eps if config.qk_norm == "rmsnorm" else None,
        )
        self.ffn = FEED_FORWARD[config.ffn](config.d_model, config.d_ff)

    def forward(
        self, x: Float[Tensor, "B T d_model"], token_positions: Int[Tensor, "... T"] | None = None,
        kv_cache: KVCache | None = None,
    ) -> Float[Tensor, "B T d_model"]:
        if self.pre_norm:
            x = x + self.attn(self.ln1(x), token_positions, kv_cache)
            return x + self.ffn(self.ln2(x))
        x = self.ln1(x + self.attn(x, token_positions, kv_cache))
        return self.ln2(x + self.ffn(x))


class TransformerLM(nn.Module):
    """Token embedding → num_layers blocks → ln_final → LM head; returns logits, not probabilities.

    head="tied" uses the token embedding matrix E as the LM head too (Vaswani et al. 2017 §3.4; PaLM, Chowdhery
    et al. 2022 §2), so the state dict has no lm_head.weight. One matrix must then suit both uses, and the
    handout's embedding init N(0, 1) does not: as the head it would give logits of standard deviation √d_model
    (22 for the course model) for the unit-RMS features out of ln_final. As the handout suggests ("you may have to
    decrease the standard deviation of the embedding/LM head init"), E is initialised N(0, 1/d_model), which
    gives logits of unit scale, and the embedding lookup is multiplied by √d_model, as Vaswani et al. do in their
    tied embedding layers, so the blocks see inputs of the untied model's unit scale.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.tied = config.head == "tied"
        self.token_embeddings = Embedding(config.vocab_size, config.d_model,
                                          std=1 / math.sqrt(config.d_model) if self.tied else 1.0)
        self.embedding_scale = math.sqrt(config.d_model) if self.tied else 1.0
        # One table shared by every layer; its buffers are non-persistent, so it adds no state-dict keys.
        self.rope = (
            RotaryPositionalEmbedding(config.rope_theta, config.head_dim, config.context_length)
            if config.pos_emb == "rope" else None
        )
        self.layers = nn.ModuleList(TransformerBlock(config, rope=self.rope) for _ in range(config.num_layers))
        self.ln_final = _norm(config)
        self.lm_head = None if self.tied else Linear(config.d_model, config.vocab_size)

    def forward(
        self, token_ids: Int[Tensor, "B T"], token_positions: Int[Tensor, "... T"] | None = None,
        kv_caches: list[KVCache] | None = None,
    ) -> Float[Tensor, "B T vocab_size"]:
        """kv_caches (one per layer, for decoding): token_ids continue the cached positions."""
        T = token_ids.shape[-1] + (kv_caches[0].length if kv_caches else 0)
        if T > self.config.context_length:
            raise ValueError(
                f"sequence length {T} is longer than the model's context_length = {self.config.context_length}"
            )
        bad = first_out_of_range(token_ids, self.config.vocab_size)
        if bad is not None:
            raise ValueError(f"token id {bad} is out of range for vocab_size = {self.config.vocab_size}")
        x = self.token_embeddings(token_ids)  # (B, T, d_model)
        if self.tied:
            x = x * self.embedding_scale
        for i, layer in enumerate(self.layers):
            x = layer(x, token_positions, kv_caches[i] if kv_caches else None)
        x = self.ln_final(x)
        logits = x @ self.token_embeddings.weight.T if self.tied else self.lm_head(x)  # (B, T, vocab_size)
        return softcap(logits, self.config.logit_softcap) if self.config.logit_softcap else logits


def count_parameters(model: nn.Module) -> dict[str, int]:
    """{"total", "non_embedding"}; non_embedding leaves out only an untied token_embeddings (a lookup, no FLOPs).

    Kaplan et al. (2020) count N without embedding matrices; with an untied output layer the lm_head is a
    d_model × vocab matmul that costs FLOPs like any other layer, so it stays in, as nanoGPT keeps its (tied)
    output weights in its non-embedding count; a tied matrix is that output layer, so it stays in too.
    """
    model = getattr(model, "_orig_mod", model)
    total = sum(p.numel() for p in model.parameters())
    embedding = 0 if getattr(model, "tied", False) else sum(
        p.numel() for name, p in model.named_parameters() if name.startswith("token_embeddings."))
    return {"total": total, "non_embedding": total - embedding}


def flops_per_token(config: ModelConfig) -> float:
    """Training FLOPs per token at full context (3 × forward matmul FLOPs); counted in cs336lm.lm.accounting."""
    return accounting.flops_per_token(config)
