"""Training objective (handout §4.1): cross-entropy from logits via log-sum-exp, and perplexity."""

from __future__ import annotations

import math

import torch
from jaxtyping import Float, Int
from torch import Tensor


def cross_entropy(logits: Float[Tensor, "... V"], targets: Int[Tensor, "..."]) -> Float[Tensor, ""]:
    """Mean over all positions of -log softmax(logits)[target] = logsumexp(logits) - logits[target]."""
    logits = logits.float()  # bf16 logits under autocast lose too much in the exp-sum
    m = logits.amax(dim=-1, keepdim=True)
    log_sum_exp = m.squeeze(-1) + torch.log(torch.exp(logits - m).sum(dim=-1))  # (...)
    target_logit = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (...)
    return (log_sum_exp - target_logit).mean()


def perplexity(loss: float | Tensor) -> float | Tensor:
    """exp(mean cross-entropy); inf rather than OverflowError for a diverged loss."""
    if isinstance(loss, Tensor):
        return loss.exp()
    return math.exp(loss) if loss < 709 else math.inf
