"""Training data (handout §5.1): token files as read-only memmaps of uint16 ids, their validation, and random
batches of (input, next-token target) windows."""

from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt
import torch

_SCAN_CHUNK = 1 << 24  # tokens per chunk when scanning for bad ids: 32 MiB of uint16 at a time


def open_tokens(path: str | os.PathLike, vocab_size: int | None = None) -> np.ndarray:
    """Memory-map a 1-D uint16 .npy token file; with vocab_size, also check every id is below it."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"token file {os.fspath(path)!r} does not exist")
    tokens = np.load(path, mmap_mode="r")
    if tokens.dtype != np.uint16 or tokens.ndim != 1:
        raise ValueError(
            f"token file {os.fspath(path)!r} holds a {tokens.ndim}-D {tokens.dtype} array; expected 1-D uint16"
        )
    if vocab_size is not None:
        check_tokens(tokens, 0, vocab_size)
    return tokens


def check_tokens(tokens: npt.ArrayLike, context_length: int, vocab_size: int | None = None) -> None:
    """Raise if `tokens` cannot give one window of context_length + 1 or holds an id outside [0, vocab_size).

    The scan reads the array in fixed-size chunks, so a memmapped corpus never sits in memory whole.
    """
    n = len(tokens)
    if n < context_length + 1:
        raise ValueError(f"{n} tokens are too few for one batch: context_length + 1 = {context_length + 1} needed")
    if vocab_size is None:
        return
    for start in range(0, n, _SCAN_CHUNK):
        chunk = np.asarray(tokens[start : start + _SCAN_CHUNK])
        if chunk.max() >= vocab_size or chunk.min() < 0:
            pos = int(np.flatnonzero((chunk < 0) | (chunk >= vocab_size))[0])
            raise ValueError(
                f"token id {int(chunk[pos])} at position {start + pos} is out of range for vocab_size = {vocab_size}"
            )


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
