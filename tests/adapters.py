"""The course test suite's adapter functions (INTERFACE.md §1–§5), each a thin call into cs336lm."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import IO, Any, BinaryIO

import numpy.typing as npt
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from cs336lm.config import ModelConfig
from cs336lm.lm import attention, data, layers, losses, model, optim
from cs336lm.training import checkpoint


def _loaded(module: torch.nn.Module, weights: dict[str, Tensor]) -> torch.nn.Module:
    module.load_state_dict(weights, strict=True)
    return module


def run_linear(d_in: int, d_out: int, weights: Float[Tensor, " d_out d_in"], in_features: Float[Tensor, " ... d_in"]):
    return _loaded(layers.Linear(d_in, d_out), {"weight": weights})(in_features)


def run_embedding(vocab_size: int, d_model: int, weights: Float[Tensor, " vocab d"], token_ids: Int[Tensor, " ..."]):
    return _loaded(layers.Embedding(vocab_size, d_model), {"weight": weights})(token_ids)


def run_swiglu(d_model: int, d_ff: int, w1_weight: Tensor, w2_weight: Tensor, w3_weight: Tensor, in_features: Tensor):
    weights = {"w1.weight": w1_weight, "w2.weight": w2_weight, "w3.weight": w3_weight}
    return _loaded(layers.SwiGLU(d_model, d_ff), weights)(in_features)


def run_scaled_dot_product_attention(
    Q: Float[Tensor, " ... q d_k"],
    K: Float[Tensor, " ... k d_k"],
    V: Float[Tensor, " ... k d_v"],
    mask: Bool[Tensor, " ... q k"] | None = None,
) -> Float[Tensor, " ... q d_v"]:
    return attention.scaled_dot_product_attention(Q, K, V, mask)


def _mha_weights(q: Tensor, k: Tensor, v: Tensor, o: Tensor) -> dict[str, Tensor]:
    return {"q_proj.weight": q, "k_proj.weight": k, "v_proj.weight": v, "output_proj.weight": o}


def run_multihead_self_attention(
    d_model: int,
    num_heads: int,
    q_proj_weight: Tensor,
    k_proj_weight: Tensor,
    v_proj_weight: Tensor,
    o_proj_weight: Tensor,
    in_features: Float[Tensor, " ... seq d_model"],
) -> Float[Tensor, " ... seq d_model"]:
    mha = attention.MultiHeadSelfAttention(d_model, num_heads)
    return _loaded(mha, _mha_weights(q_proj_weight, k_proj_weight, v_proj_weight, o_proj_weight))(in_features)


def run_multihead_self_attention_with_rope(
    d_model: int,
    num_heads: int,
    max_seq_len: int,
    theta: float,
    q_proj_weight: Tensor,
    k_proj_weight: Tensor,
    v_proj_weight: Tensor,
    o_proj_weight: Tensor,
    in_features: Float[Tensor, " ... seq d_model"],
    token_positions: Int[Tensor, " ... seq"] | None = None,
) -> Float[Tensor, " ... seq d_model"]:
    rope = attention.RotaryPositionalEmbedding(theta, d_model // num_heads, max_seq_len)
    mha = attention.MultiHeadSelfAttention(d_model, num_heads, rope=rope)
    mha = _loaded(mha, _mha_weights(q_proj_weight, k_proj_weight, v_proj_weight, o_proj_weight))
    return mha(in_features, token_positions)


def run_rope(
    d_k: int,
    theta: float,
    max_seq_len: int,
    in_query_or_key: Float[Tensor, " ... seq d_k"],
    token_positions: Int[Tensor, " ... seq"],
) -> Float[Tensor, " ... seq d_k"]:
    return attention.RotaryPositionalEmbedding(theta, d_k, max_seq_len)(in_query_or_key, token_positions)


def run_transformer_block(
    d_model: int,
    num_heads: int,
    d_ff: int,
    max_seq_len: int,
    theta: float,
    weights: dict[str, Tensor],
    in_features: Float[Tensor, " batch seq d_model"],
) -> Float[Tensor, " batch seq d_model"]:
    # vocab_size and num_layers do not shape a single block; 1 satisfies the config's validation.
    config = ModelConfig(vocab_size=1, context_length=max_seq_len, d_model=d_model, num_layers=1,
                         num_heads=num_heads, d_ff=d_ff, rope_theta=theta)
    return _loaded(model.TransformerBlock(config), weights)(in_features)


def run_transformer_lm(
    vocab_size: int,
    context_length: int,
    d_model: int,
    num_layers: int,
    num_heads: int,
    d_ff: int,
    rope_theta: float,
    weights: dict[str, Tensor],
    in_indices: Int[Tensor, " batch seq"],
) -> Float[Tensor, " batch seq vocab_size"]:
    config = ModelConfig(vocab_size=vocab_size, context_length=context_length, d_model=d_model,
                         num_layers=num_layers, num_heads=num_heads, d_ff=d_ff, rope_theta=rope_theta)
    return _loaded(model.TransformerLM(config), weights)(in_indices)


def run_rmsnorm(d_model: int, eps: float, weights: Float[Tensor, " d_model"], in_features: Tensor) -> Tensor:
    return _loaded(layers.RMSNorm(d_model, eps=eps), {"weight": weights})(in_features)


def run_silu(in_features: Tensor) -> Tensor:
    return layers.silu(in_features)


def run_get_batch(
    dataset: npt.NDArray, batch_size: int, context_length: int, device: str
) -> tuple[torch.Tensor, torch.Tensor]:
    return data.get_batch(dataset, batch_size, context_length, device)


def run_softmax(in_features: Tensor, dim: int) -> Tensor:
    return attention.softmax(in_features, dim)


def run_cross_entropy(inputs: Float[Tensor, " batch vocab"], targets: Int[Tensor, " batch"]) -> Float[Tensor, ""]:
    return losses.cross_entropy(inputs, targets)


def run_gradient_clipping(parameters: Iterable[torch.nn.Parameter], max_l2_norm: float) -> None:
    optim.clip_grad_norm(parameters, max_l2_norm)


def get_adamw_cls() -> type[torch.optim.Optimizer]:
    return optim.AdamW


def run_get_lr_cosine_schedule(
    it: int, max_learning_rate: float, min_learning_rate: float, warmup_iters: int, cosine_cycle_iters: int
) -> float:
    return optim.lr_cosine_schedule(it, max_learning_rate, min_learning_rate, warmup_iters, cosine_cycle_iters)


def run_save_checkpoint(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    iteration: int,
    out: str | os.PathLike | BinaryIO | IO[bytes],
) -> None:
    checkpoint.save_checkpoint(model, optimizer, iteration, out)


def run_load_checkpoint(
    src: str | os.PathLike | BinaryIO | IO[bytes], model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> int:
    return checkpoint.load_checkpoint(src, model, optimizer)


def get_tokenizer(
    vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]], special_tokens: list[str] | None = None
) -> Any:
    from cs336lm.tokenization import Tokenizer

    # The from-scratch encoder, so the course suite tests our code rather than tiktoken's (the fast path is tested
    # equal to it in tests/tokenization/test_tokenizer.py and tests/tokenization/test_tokenizer_fuzz.py).
    return Tokenizer(vocab, merges, special_tokens, backend="python")


def run_train_bpe(
    input_path: str | os.PathLike, vocab_size: int, special_tokens: list[str], **kwargs: Any
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    from cs336lm.tokenization import train_bpe

    return train_bpe(input_path, vocab_size, special_tokens, **kwargs)
