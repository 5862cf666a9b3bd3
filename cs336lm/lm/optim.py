"""Optimization (handout §4.3–§4.5): AdamW (Loshchilov & Hutter 2019) exactly as the handout writes it, the cosine
learning-rate schedule with linear warmup, and global-norm gradient clipping."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn


class AdamW(torch.optim.Optimizer):
    """AdamW with the bias correction folded into the step size and decoupled weight decay applied last.

    State per parameter: step (int), exp_avg (m), exp_avg_sq (v). foreach=True runs the same arithmetic with
    multi-tensor torch._foreach_* kernels (fewer launches on GPU); it is a constructor choice, not saved state.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        foreach: bool = False,
    ):
        if lr < 0:
            raise ValueError(f"AdamW lr = {lr} must be >= 0")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"AdamW betas = {betas} must each be in [0, 1)")
        if eps <= 0 or weight_decay < 0:
            raise ValueError(f"AdamW eps = {eps} must be > 0 and weight_decay = {weight_decay} >= 0")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))
        self.foreach = foreach

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
            if params:
                (self._update_foreach if self.foreach else self._update_loop)(group, params)
        return loss

    def _step_size(self, group: dict, t: int) -> float:
        b1, b2 = group["betas"]
        return group["lr"] * math.sqrt(1 - b2**t) / (1 - b1**t)

    def _update_loop(self, group: dict, params: list[Tensor]) -> None:
        b1, b2 = group["betas"]
        for p in params:
            state, g = self.state[p], p.grad
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-self._step_size(group, state["step"]))
            p.mul_(1 - group["lr"] * group["weight_decay"])

    def _update_foreach(self, group: dict, params: list[Tensor]) -> None:
        b1, b2 = group["betas"]
        grads = [p.grad for p in params]
        ms = [self.state[p]["exp_avg"] for p in params]
        vs = [self.state[p]["exp_avg_sq"] for p in params]
        torch._foreach_mul_(ms, b1)
        torch._foreach_add_(ms, grads, alpha=1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, grads, grads, value=1 - b2)
        denoms = torch._foreach_sqrt(vs)
        torch._foreach_add_(denoms, group["eps"])
        step_sizes = [-self._step_size(group, self.state[p]["step"]) for p in params]
        torch._foreach_addcdiv_(params, ms, denoms, step_sizes)
        torch._foreach_mul_(params, 1 - group["lr"] * group["weight_decay"])


def lr_cosine_schedule(
    it: int, max_learning_rate: float, min_learning_rate: float, warmup_iters: int, cosine_cycle_iters: int
) -> float:
    """Linear warmup to max over warmup_iters, cosine down to min at cosine_cycle_iters, then min."""
    if it < warmup_iters:
        return it / warmup_iters * max_learning_rate
    if it > cosine_cycle_iters:
        return min_learning_rate
    progress = (it - warmup_iters) / max(cosine_cycle_iters - warmup_iters, 1)
    return min_learning_rate + 0.5 * (1 + math.cos(math.pi * progress)) * (max_learning_rate - min_learning_rate)


def global_grad_norm(parameters: Iterable[nn.Parameter]) -> Tensor:
    """The joint L2 norm of all gradients (parameters without one are skipped), as a 0-d tensor on their device."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def clip_grad_norm(parameters: Iterable[nn.Parameter], max_l2_norm: float, eps: float = 1e-6) -> Tensor:
    """Scale all gradients in place by max_l2_norm / (norm + eps) when their joint L2 norm exceeds max_l2_norm.

    Returns the norm before clipping as a 0-d tensor. The scale is applied unconditionally (clamped to 1), so
    clipping never waits for the device: the caller syncs only if it reads the norm.
    """
    parameters = list(parameters)  # may be a one-shot iterable
    total = global_grad_norm(parameters)
    grads = [p.grad for p in parameters if p.grad is not None]
    if grads:
        torch._foreach_mul_(grads, torch.clamp(max_l2_norm / (total + eps), max=1.0))
    return total
