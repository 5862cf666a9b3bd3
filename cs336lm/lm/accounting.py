"""Parameter, FLOP and memory accounting of the TransformerLM (handout §3.6 `transformer_accounting`, §4.3
`adamwAccounting`): exact counts for our architecture (a SwiGLU feed-forward with three bias-free matrices, or the
SiLU/ReLU² one with two, an untied or tied LM head, RMSNorm gains as the only vectors) and its variants, per
component, plus the GPT-2 shapes the handout asks about. Torch-free.

Matmul cost convention (handout §3.6): multiplying an m×n by an n×p matrix costs 2·m·n·p FLOPs. Attention is
counted over the full T×T score matrix, which masked attention (handout §3.5.4: "adding a −∞ in any entry of the mask
matrix that is False") computes in full, not over its causal half.
"""

from __future__ import annotations

import math

from cs336lm.config import ModelConfig

FLOAT32_BYTES = 4
GPT2_VOCAB_SIZE = 50_257
GPT2_SHAPES = {  # name: (num_layers, d_model, num_heads), as the handout lists them (§3.6)
    "GPT-2 small": (12, 768, 12),
    "GPT-2 medium": (24, 1024, 16),
    "GPT-2 large": (36, 1280, 20),
    "GPT-2 XL": (48, 1600, 25),
}
ADAMW_FLOPS_PER_PARAMETER = 14  # m: 3, v: 4, update with sqrt and division: 5, decoupled weight decay: 2


def gpt2_config(name: str, context_length: int = 1024, ffn: str = "swiglu") -> ModelConfig:
    """A GPT-2-shaped model in our architecture: GPT-2's vocabulary, layers, width and heads, and d_ff = 4 · d_model
    (the handout lists d_ff = 6,400 for GPT-2 XL's d_model of 1,600; for the other sizes it gives none, and 4 × is
    GPT-2's own ratio). `ffn` "silu" is the two-matrix feed-forward W2 SiLU(W1 x)."""
    num_layers, d_model, num_heads = GPT2_SHAPES[name]
    return ModelConfig(vocab_size=GPT2_VOCAB_SIZE, context_length=context_length, num_layers=num_layers,
                       d_model=d_model, num_heads=num_heads, d_ff=4 * d_model, ffn=ffn)


def _ffn_matrices(config: ModelConfig) -> int:
    return 3 if config.ffn == "swiglu" else 2  # SiLU and ReLU² FFNs: W1 and W2


def parameter_counts(config: ModelConfig) -> dict[str, int]:
    """Trainable parameters by component, and their `total` (equals count_parameters of a real TransformerLM).

    A tied head is the token embedding matrix, counted once (under token embeddings); QK-norm adds a query and a
    key gain of head_dim per layer.
    """
    d, L, V = config.d_model, config.num_layers, config.vocab_size
    norms = (2 * L + 1) * d if config.norm == "rmsnorm" else 0  # two per block and the final one
    qk_norms = L * 2 * config.head_dim if config.qk_norm == "rmsnorm" else 0
    counts = {
        "token embeddings": V * d,
        "attention (Q, K, V, output)": L * 4 * d * d,
        "feed-forward": L * _ffn_matrices(config) * d * config.d_ff,
        "RMSNorm gains": norms + qk_norms,
        "LM head": 0 if config.head == "tied" else d * V,
    }
    return {**counts, "total": sum(counts.values())}


def forward_flops(config: ModelConfig, batch_size: int = 1) -> dict[str, int]:
    """Forward-pass matmul FLOPs for `batch_size` sequences of context_length tokens, by component, and `total`.

    Per layer: Q, K, V and output projections 4 · 2·T·d²; scores QKᵀ and the weighted sum of V, each 2·T²·d
    (summed over heads); the feed-forward 2·T·d·d_ff per matrix. Then the LM head 2·T·d·V, tied or not. Elementwise
    work (norms and QK-norm, softmax, SiLU, ReLU², RoPE, logit soft-capping) is not a matmul and is left out.
    """
    d, L, T, V = config.d_model, config.num_layers, config.context_length, config.vocab_size
    flops = {
        "Q, K, V projections": L * 3 * 2 * T * d * d,
        "attention scores QKᵀ": L * 2 * T * T * d,
        "attention-weighted values AV": L * 2 * T * T * d,
        "attention output projection": L * 2 * T * d * d,
        "feed-forward": L * _ffn_matrices(config) * 2 * T * d * config.d_ff,
        "LM head": 2 * T * d * V,
    }
    flops = {name: batch_size * value for name, value in flops.items()}
    return {**flops, "total": sum(flops.values())}


def flops_per_token(config: ModelConfig) -> float:
    """Training FLOPs per token at full context: forward plus a backward of twice the forward (Kaplan et al. 2020)."""
    return 3.0 * forward_flops(config)["total"] / config.context_length


def activation_elements(config: ModelConfig, batch_size: int) -> dict[str, int]:
    """Activations kept for the backward pass (handout §4.3 (a)'s list, one stored tensor per item), in elements.

    Per block: the two RMSNorm outputs (2·B·T·d), the Q, K, V projections (3·B·T·d), the scores QᵀK and their
    softmax (2·B·h·T²), the weighted sum of V and the output projection (2·B·T·d), the feed-forward's W1 output
    and SiLU of it (2·B·T·d_ff; SwiGLU adds W3's output and the elementwise product, 2·B·T·d_ff more) and W2's
    output (B·T·d). Then the final RMSNorm (B·T·d), the output embedding's logits (B·T·V) and the cross-entropy's
    softmax over them (B·T·V).
    """
    B, T, d, L = batch_size, config.context_length, config.d_model, config.num_layers
    h, d_ff, V = config.num_heads, config.d_ff, config.vocab_size
    norms = 2 if config.norm == "rmsnorm" else 0
    ffn = ("feed-forward (W1, W3, SiLU, product, W2)", 4) if config.ffn == "swiglu" else \
        ("feed-forward (W1, SiLU, W2)", 2)
    elements = {
        "RMSNorms in blocks": L * norms * B * T * d,
        "attention (QKV, QᵀK, softmax, AV, output)": L * (3 * B * T * d + 2 * B * h * T * T + 2 * B * T * d),
        ffn[0]: L * (ffn[1] * B * T * d_ff + B * T * d),
        "final RMSNorm": norms // 2 * B * T * d,
        "logits and cross-entropy": 2 * B * T * V,
    }
    return {**elements, "total": sum(elements.values())}


def adamw_memory(config: ModelConfig, batch_size: int) -> dict[str, int]:
    """Peak float32 bytes of one AdamW training step: parameters, gradients, optimizer state (m and v),
    activations, and `total`."""
    params = parameter_counts(config)["total"]
    memory = {
        "parameters": FLOAT32_BYTES * params,
        "gradients": FLOAT32_BYTES * params,
        "optimizer state (m, v)": 2 * FLOAT32_BYTES * params,
        "activations": FLOAT32_BYTES * activation_elements(config, batch_size)["total"],
    }
    return {**memory, "total": sum(memory.values())}


def memory_line(config: ModelConfig) -> tuple[int, int]:
    """(a, b) with peak AdamW bytes = a · batch_size + b: activations grow with the batch, the rest does not."""
    b = adamw_memory(config, 0)["total"]
    return adamw_memory(config, 1)["total"] - b, b


def largest_batch_size(config: ModelConfig, memory_bytes: float) -> int:
    """The largest batch whose peak AdamW memory fits in `memory_bytes` (0 if not even the weights fit)."""
    a, b = memory_line(config)
    return max(0, math.floor((memory_bytes - b) / a))


def adamw_step_flops(config: ModelConfig) -> int:
    """FLOPs of one AdamW update: 14 per parameter, counting a square root and a division as one FLOP each
    (scalar work such as the bias corrections is shared by all parameters and left out)."""
    return ADAMW_FLOPS_PER_PARAMETER * parameter_counts(config)["total"]


def training_step_flops(config: ModelConfig, batch_size: int) -> int:
    """One training step: forward and backward (twice the forward) over the batch, then the AdamW update."""
    return 3 * forward_flops(config, batch_size)["total"] + adamw_step_flops(config)


def training_seconds(config: ModelConfig, *, steps: int, batch_size: int, peak_flops: float, mfu: float) -> float:
    """Wall-clock seconds to train `steps` steps when the device sustains `mfu` of its `peak_flops` FLOP/s."""
    return steps * training_step_flops(config, batch_size) / (peak_flops * mfu)
