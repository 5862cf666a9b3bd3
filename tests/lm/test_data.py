"""cs336lm.lm.data: batch offsets and bounds, reproducible order."""

import numpy as np
import pytest
import torch

from cs336lm.lm.data import get_batch


def test_get_batch_offsets_bounds_and_uniformity():
    dataset = np.arange(100)
    starts = []
    for _ in range(1000):
        x, y = get_batch(dataset, 32, 7, "cpu")
        assert x.shape == y.shape == (32, 7) and x.dtype == y.dtype == torch.int64
        torch.testing.assert_close(y, x + 1)
        torch.testing.assert_close(x, x[:, :1] + torch.arange(7))
        starts.extend(x[:, 0].tolist())
    assert min(starts) == 0 and max(starts) == 92  # every start in 0 … len-L-1, none beyond
    counts = np.bincount(starts, minlength=93)
    mean, sigma = 32_000 / 93, np.sqrt(32_000 / 93 * (1 - 1 / 93))
    assert np.all(np.abs(counts - mean) < 5 * sigma)


def test_get_batch_places_tensors_on_the_requested_device():
    # The meta device exists in every torch build, CPU-only ones included: a batch left on the CPU fails here.
    for device in ("meta", torch.device("meta")):
        x, y = get_batch(np.arange(100), 2, 7, device)
        assert x.device.type == y.device.type == "meta" and x.shape == y.shape == (2, 7)
        assert x.dtype == y.dtype == torch.int64


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_get_batch_on_cuda_uses_pinned_non_blocking_copies():
    x, y = get_batch(np.arange(100, dtype=np.uint16), 4, 7, "cuda")
    assert x.device.type == y.device.type == "cuda" and x.dtype == torch.int64
    torch.testing.assert_close(y, x + 1)


def test_get_batch_rng_makes_the_order_reproducible():
    dataset = np.arange(1000, dtype=np.uint16)
    rng = np.random.default_rng(7)
    first = get_batch(dataset, 4, 8, "cpu", rng=rng)
    state = rng.bit_generator.state
    second = get_batch(dataset, 4, 8, "cpu", rng=rng)
    resumed = np.random.default_rng()
    resumed.bit_generator.state = state
    assert torch.equal(get_batch(dataset, 4, 8, "cpu", rng=resumed)[0], second[0])
    assert torch.equal(get_batch(dataset, 4, 8, "cpu", rng=np.random.default_rng(7))[0], first[0])


def test_get_batch_rejects_a_too_short_dataset():
    with pytest.raises(ValueError, match="dataset of 8 tokens is too short for context_length = 8"):
        get_batch(np.arange(8), 1, 8, "cpu")
