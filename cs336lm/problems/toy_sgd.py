"""The toy SGD problem of handout §4.2 (`learning_rate_tuning`): a 10×10 weight matrix drawn as 5·N(0, 1) from a
seeded generator, loss mean(w²), and the handout's example SGD whose step size decays as lr / sqrt(t + 1),
run for a few steps at several learning rates."""

from __future__ import annotations

import math

import pandas as pd
import torch


class DecayingSGD(torch.optim.Optimizer):
    """SGD with the step size lr / sqrt(t + 1) at the t-th update (t from 0), the handout's example optimizer."""

    def __init__(self, params, lr: float = 1e-3):
        if lr < 0:
            raise ValueError(f"invalid learning rate {lr}")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                t = state.get("t", 0)
                p -= group["lr"] / math.sqrt(t + 1) * p.grad
                state["t"] = t + 1
        return loss


def toy_losses(lr: float, steps: int = 10, seed: int = 0) -> list[float]:
    """The loss before each of `steps` updates at learning rate `lr`."""
    generator = torch.Generator().manual_seed(seed)
    weights = torch.nn.Parameter(5 * torch.randn((10, 10), generator=generator))
    optimizer = DecayingSGD([weights], lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = (weights**2).mean()
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
    return losses


def learning_rate_tuning(lrs: tuple[float, ...] = (1.0, 1e1, 1e2, 1e3), steps: int = 10, seed: int = 0
                         ) -> pd.DataFrame:
    """One row per (lr, step) with the loss before that step; every lr starts from the same weights."""
    return pd.DataFrame([{"lr": lr, "step": step, "loss": loss}
                         for lr in lrs for step, loss in enumerate(toy_losses(lr, steps, seed))])
