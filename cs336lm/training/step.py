"""One training step (handout §4, §5): forward and loss under autocast (optionally compiled), backward, gradient
clipping and the AdamW update, with the optimizer it uses. The training loop (cs336lm.training.train), the batch
probe and the benchmarks all run this one step, so they time and size exactly what training runs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cs336lm.config import RunConfig
from cs336lm.lm.losses import cross_entropy
from cs336lm.lm.optim import AdamW, clip_grad_norm, global_grad_norm
from cs336lm.training import implementation
from cs336lm.training.device import autocast


class BatchTooLargeError(RuntimeError):
    """One training step did not fit in device memory."""


class TrainStep:
    """One optimizer step: forward and loss (under autocast, optionally compiled), backward, clipping, AdamW.

    Returns the loss (with train.z_loss, the z-loss included) and the pre-clip gradient norm as device tensors,
    so the loop syncs with the device only when it logs. Shared with the benchmarks so they time exactly what
    training runs. A config left at `auto` is resolved for `device` here (cs336lm.training.implementation).
    """

    def __init__(self, model: nn.Module, cfg: RunConfig, device: torch.device):
        cfg = implementation.resolve(cfg, device.type)
        self.model, self.device, self.dtype = model, device, cfg.train.dtype
        self.grad_clip = cfg.optim.grad_clip
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.params, cfg)

        self.z_loss = cfg.train.z_loss  # training objective only: evaluation calls `loss` without it

        def loss_of(x: Tensor, y: Tensor, z_loss: float) -> Tensor:
            return cross_entropy(model(x), y, z_loss)

        # Compiling the loss with the model lets inductor fuse the logits' log-sum-exp into few kernels; the
        # module itself stays uncompiled, so checkpoints keep plain parameter names.
        self.loss_of = torch.compile(loss_of) if cfg.train.compile else loss_of

    def loss(self, x: Tensor, y: Tensor, z_loss: float = 0.0) -> Tensor:
        with autocast(self.device, self.dtype):
            return self.loss_of(x, y, z_loss)

    def __call__(self, x: Tensor, y: Tensor, lr: float) -> tuple[Tensor, Tensor]:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss = self.loss(x, y, self.z_loss)
        loss.backward()
        # grad_clip 0 turns clipping off; the norm is logged either way.
        with torch.no_grad():
            grad_norm = (clip_grad_norm(self.params, self.grad_clip) if self.grad_clip > 0
                         else global_grad_norm(self.params))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach(), grad_norm


def build_optimizer(params: list[nn.Parameter], cfg: RunConfig) -> torch.optim.Optimizer:
    """reference: our AdamW, one parameter at a time; foreach: our AdamW on multi-tensor kernels; fused: torch's."""
    o = cfg.optim
    kwargs = dict(lr=o.lr_max, betas=(o.beta1, o.beta2), eps=o.eps, weight_decay=o.weight_decay)
    if o.implementation == "fused":
        # torch folds eps inside the bias correction and decays before the update; equal to ours to ~1e-6.
        return torch.optim.AdamW(params, fused=True, **kwargs)
    return AdamW(params, foreach=o.implementation == "foreach", **kwargs)
