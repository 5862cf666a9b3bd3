"""cs336lm.training.checkpoint: resume equals an uninterrupted run; version, corruption and architecture errors."""

import io
import pickle

import numpy as np
import pytest
import torch

from cs336lm.config import ModelConfig
from cs336lm.lm.losses import cross_entropy
from cs336lm.lm.model import TransformerLM
from cs336lm.lm.optim import AdamW
from cs336lm.training.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)

CONFIG = ModelConfig(vocab_size=40, context_length=8, d_model=16, num_layers=1, num_heads=2, d_ff=32)


def _fresh(config=CONFIG):
    torch.manual_seed(0)
    model = TransformerLM(config)
    return model, AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)


def _steps(model, optimizer, start, stop):
    for step in range(start, stop):
        ids = torch.randint(0, 40, (2, 9), generator=torch.Generator().manual_seed(step))
        loss = cross_entropy(model(ids[:, :-1]), ids[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    straight, straight_opt = _fresh()
    _steps(straight, straight_opt, 0, 6)

    first, first_opt = _fresh()
    _steps(first, first_opt, 0, 3)
    path = tmp_path / "ckpt.pt"
    save_checkpoint(first, first_opt, 3, path, config={"model.d_model": 16}, extra={"note": "x"})
    torch.manual_seed(123)  # fresh objects start from different weights
    resumed = TransformerLM(CONFIG)
    resumed_opt = AdamW(resumed.parameters(), lr=1.0)
    assert load_checkpoint(path, resumed, resumed_opt) == 3
    assert resumed_opt.param_groups[0]["lr"] == 1e-2
    _steps(resumed, resumed_opt, 3, 6)

    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    assert read_checkpoint(path)["config"] == {"model.d_model": 16}
    assert [f.name for f in tmp_path.iterdir()] == ["ckpt.pt"]  # the temp file was renamed away


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # torch's own import
def test_file_objects_compiled_models_and_numpy_rng_state():
    model, optimizer = _fresh()
    rng = np.random.default_rng(3)
    buffer = io.BytesIO()
    save_checkpoint(torch.compile(model), optimizer, 7, buffer, extra={"rng": rng.bit_generator.state})
    buffer.seek(0)
    ckpt = read_checkpoint(buffer)
    assert ckpt["format_version"] == FORMAT_VERSION
    assert not any("_orig_mod" in key for key in ckpt["model"])
    restored = np.random.default_rng()
    restored.bit_generator.state = ckpt["extra"]["rng"]
    assert restored.integers(1 << 30) == rng.integers(1 << 30)
    buffer.seek(0)
    other, other_opt = _fresh()
    assert load_checkpoint(buffer, torch.compile(other), other_opt) == 7


def test_other_format_version_is_rejected(tmp_path):
    model, optimizer = _fresh()
    path = tmp_path / "old.pt"
    save_checkpoint(model, optimizer, 1, path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["format_version"] = 0
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=f"old.pt has format_version 0, but this code reads format_version {1}"):
        load_checkpoint(path, model, optimizer)


def test_truncated_file_is_rejected(tmp_path):
    model, optimizer = _fresh()
    path = tmp_path / "cut.pt"
    save_checkpoint(model, optimizer, 1, path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*cut.pt: the file is truncated or corrupt"):
        read_checkpoint(path)


def test_other_architecture_is_rejected_with_the_differences(tmp_path):
    model, optimizer = _fresh()
    path = tmp_path / "small.pt"
    save_checkpoint(model, optimizer, 1, path)
    wider, _ = _fresh(ModelConfig(vocab_size=40, context_length=8, d_model=16, num_layers=2, num_heads=2, d_ff=48,
                                  norm="none"))
    with pytest.raises(CheckpointError, match="architecture differs from the model's config") as info:
        load_checkpoint(path, wider)
    message = str(info.value)
    assert "missing keys: layers.1.attn.k_proj.weight, layers.1.attn.output_proj.weight" in message
    assert "unexpected keys: layers.0.ln1.weight" in message
    assert "layers.0.ffn.w1.weight: checkpoint (32, 16) vs model (48, 16)" in message


def test_model_only_checkpoint_cannot_restore_an_optimizer(tmp_path):
    model, optimizer = _fresh()
    save_checkpoint(model, None, 5, tmp_path / "model.pt")
    assert load_checkpoint(tmp_path / "model.pt", model) == 5
    with pytest.raises(CheckpointError, match="model.pt holds no optimizer state to restore"):
        load_checkpoint(tmp_path / "model.pt", model, optimizer)


class _NotATensor:
    """A Python object in a checkpoint: weights_only loading refuses it (unpickling it could run code)."""


def test_checkpoint_with_python_objects_is_refused_not_called_truncated(tmp_path):
    model, optimizer = _fresh()
    path = tmp_path / "pickled.pt"
    torch.save({"format_version": FORMAT_VERSION, "model": model.state_dict(), "extra": _NotATensor()}, path)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert "pickled.pt is not a cs336lm checkpoint: torch.load(weights_only=True) refused to unpickle it" in message
    assert "_NotATensor" in message and "truncated" not in message
    with open(path, "rb") as f, pytest.raises(CheckpointError, match="refused to unpickle"):
        read_checkpoint(f)


@pytest.mark.parametrize("content", [pickle.dumps({"format_version": 1}), b"step,loss\n1,3.2\n", b"\x00" * 64])
def test_a_file_torch_save_did_not_write_is_named_as_such(tmp_path, content):
    path = tmp_path / "other.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"other.pt is not a cs336lm checkpoint: it is not a file written by "
                                              r"torch.save \(a zip archive\); it starts with b'"):
        read_checkpoint(path)


def test_empty_file_is_truncated(tmp_path):
    (tmp_path / "empty.pt").touch()
    with pytest.raises(CheckpointError, match=r"empty.pt: the file is truncated or corrupt \(it is empty\)"):
        read_checkpoint(tmp_path / "empty.pt")
