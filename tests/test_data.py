"""cs336lm.data: batch offsets and bounds, reproducible order, token-file validation."""

import numpy as np
import pytest
import torch

from cs336lm import data
from cs336lm.data import check_tokens, get_batch, open_tokens


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
    with pytest.raises((RuntimeError, AssertionError)):
        get_batch(np.arange(100), 2, 7, "cuda:99")


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


def test_open_tokens_memmaps_uint16(tmp_path):
    path = tmp_path / "tokens.npy"
    np.save(path, np.arange(50, dtype=np.uint16))
    tokens = open_tokens(path, vocab_size=50)
    assert isinstance(tokens, np.memmap) and tokens.dtype == np.uint16
    x, y = get_batch(tokens, 3, 5, "cpu")
    torch.testing.assert_close(y, x + 1)


def test_open_tokens_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        open_tokens(tmp_path / "missing.npy")
    np.save(tmp_path / "wide.npy", np.arange(10, dtype=np.int32))
    with pytest.raises(ValueError, match="holds a 1-D int32 array; expected 1-D uint16"):
        open_tokens(tmp_path / "wide.npy")
    np.save(tmp_path / "square.npy", np.zeros((3, 3), dtype=np.uint16))
    with pytest.raises(ValueError, match="holds a 2-D uint16 array"):
        open_tokens(tmp_path / "square.npy")
    np.save(tmp_path / "bad.npy", np.array([1, 2, 60_000], dtype=np.uint16))
    with pytest.raises(ValueError, match="token id 60000 at position 2 is out of range for vocab_size = 10000"):
        open_tokens(tmp_path / "bad.npy", vocab_size=10_000)


def test_check_tokens_scans_in_chunks_and_checks_length(monkeypatch):
    monkeypatch.setattr(data, "_SCAN_CHUNK", 4)
    tokens = np.zeros(23, dtype=np.uint16)
    tokens[[13, 17]] = [500, 700]
    with pytest.raises(ValueError, match="token id 500 at position 13 is out of range for vocab_size = 500"):
        check_tokens(tokens, 8, vocab_size=500)
    check_tokens(tokens, 22, vocab_size=701)
    with pytest.raises(ValueError, match="23 tokens are too few for one batch: context_length \\+ 1 = 24 needed"):
        check_tokens(tokens, 23)
