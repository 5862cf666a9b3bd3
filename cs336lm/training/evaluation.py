"""Validation loss (handout §5.3): periodic evaluations on a fixed random sample of windows, the
same for every run whatever its batch size, and a finished run's score on the whole validation split (or its first
`train.final_eval_tokens`) in non-overlapping context windows. Both run in eval mode without gradients, under the
training step's autocast.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import Tensor, nn

from cs336lm.config import RunConfig
from cs336lm.lm.data import get_batch

VALIDATION_SEED = 20250401  # one validation sample for every run, whatever its training seed

LossFn = Callable[[Tensor, Tensor], Tensor]  # (inputs, targets) -> mean loss, e.g. TrainStep.loss


def validation_sample(valid: np.ndarray, cfg: RunConfig, device: torch.device) -> list[tuple[Tensor, Tensor]]:
    """`train.eval_batches` batches of `train.eval_batch_size` random windows, drawn with a fixed seed."""
    rng = np.random.default_rng(VALIDATION_SEED)
    return [get_batch(valid, cfg.train.eval_batch_size, cfg.model.context_length, device, rng=rng)
            for _ in range(cfg.train.eval_batches)]


@torch.no_grad()
def sample_loss(model: nn.Module, loss_fn: LossFn, batches: list[tuple[Tensor, Tensor]]) -> float:
    """Mean loss over the fixed validation batches (all the same size, so the mean of means is exact)."""
    with _eval_mode(model):
        losses = torch.stack([loss_fn(x, y) for x, y in batches])
    return losses.mean().item()


@torch.no_grad()
def split_loss(model: nn.Module, loss_fn: LossFn, valid: np.ndarray, cfg: RunConfig,
               device: torch.device) -> tuple[float, int]:
    """(mean loss per token, tokens scored) over the split cut into consecutive context windows, each token
    predicted once; `train.final_eval_tokens` > 0 scores only the windows covering the first that many tokens."""
    losses, counts = [], []
    with _eval_mode(model):
        for x, y in split_windows(valid, cfg.model.context_length, cfg.train.eval_batch_size,
                                  cfg.train.final_eval_tokens, device):
            losses.append(loss_fn(x, y).float())
            counts.append(y.numel())
    total = sum(counts)
    weights = torch.tensor(counts, dtype=torch.float32, device=device) / total
    return (torch.stack(losses) * weights).sum().item(), total  # one host sync for the whole split


def split_windows(tokens: np.ndarray, context_length: int, batch_size: int, max_tokens: int,
                  device: torch.device) -> Iterator[tuple[Tensor, Tensor]]:
    """Batches of windows x = tokens[i·T : (i+1)·T], y shifted by one, for i = 0, 1, …; the last batch may be
    smaller. max_tokens > 0 stops after the windows covering that many tokens."""
    T = context_length
    windows = split_tokens(len(tokens), T, max_tokens) // T
    for first in range(0, windows, batch_size):
        last = min(first + batch_size, windows)
        chunk = torch.from_numpy(np.asarray(tokens[first * T : last * T + 1]).astype(np.int64))
        x, y = chunk[:-1].view(-1, T), chunk[1:].view(-1, T)
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def split_tokens(num_tokens: int, context_length: int, max_tokens: int) -> int:
    """How many tokens split_loss scores in a split of `num_tokens` (whole windows; max_tokens > 0 caps them)."""
    windows = (num_tokens - 1) // context_length
    if max_tokens:
        windows = min(windows, math.ceil(max_tokens / context_length))
    return windows * context_length


class _eval_mode:
    """model.eval() inside, and back to the mode it had after."""

    def __init__(self, model: nn.Module):
        self.model, self.was_training = model, model.training

    def __enter__(self) -> None:
        self.model.eval()

    def __exit__(self, *exc: object) -> None:
        self.model.train(self.was_training)
