"""Training batches (handout §5.1): random (input, next-token target) windows from a token array, e.g. a memmapped
token file from `cs336lm.tokenization.token_files.open_tokens`."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch


def get_batch(
    dataset: npt.ArrayLike,
    batch_size: int,
    context_length: int,
    device: str | torch.device,
    rng: np.random.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample batch_size windows: x = dataset[s : s+L], y = dataset[s+1 : s+L+1], s uniform in 0 … len-L-1.

    Returns int64 tensors of shape (batch_size, context_length) on `device`. Pass a seeded `rng` (and save its
    state in checkpoints) to make the data order reproducible across a resume.
    """
    num_starts = len(dataset) - context_length
    if num_starts < 1:
        raise ValueError(
            f"dataset of {len(dataset)} tokens is too short for context_length = {context_length} (needs at least "
            f"{context_length + 1})"
        )
    rng = np.random.default_rng() if rng is None else rng
    starts = rng.integers(0, num_starts, size=batch_size)  # (B,)
    index = starts[:, None] + np.arange(context_length + 1)  # (B, L+1): one fancy-index read from the memmap
    window = torch.from_numpy(np.asarray(dataset[index]).astype(np.int64))
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        window = window.pin_memory().to(device, non_blocking=True)
    else:
        window = window.to(device)
    return window[:, :-1].contiguous(), window[:, 1:].contiguous()
