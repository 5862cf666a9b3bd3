"""Checkpoints (handout §5.2), versioned: {format_version, model, optimizer, iteration, config, extra}, written
atomically and read back with torch.load(weights_only=True). The model state is always the uncompiled module's,
so a checkpoint loads with or without torch.compile. `load_model` rebuilds a trained model from its file."""

from __future__ import annotations

import os
import pickle
import re
from typing import IO, Any

import torch
from torch import nn

from cs336lm.atomic import atomic_path
from cs336lm.config import ModelConfig, RunConfig
from cs336lm.lm.model import TransformerLM

FORMAT_VERSION = 1
ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive (since torch 1.6)

Source = str | os.PathLike | IO[bytes]


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not fit the model; the message names the file and the problem."""


def _uncompiled(model: nn.Module) -> nn.Module:
    return getattr(model, "_orig_mod", model)


def _name(src: Source) -> str:
    return os.fspath(src) if isinstance(src, str | os.PathLike) else getattr(src, "name", repr(src))


def save_checkpoint(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    iteration: int,
    out: Source,
    config: dict | None = None,
    extra: dict | None = None,
) -> None:
    """Write the checkpoint to a path (via a temp file in the same folder and os.replace) or a binary file.

    optimizer=None saves a weights-only model file (optimizer state {}), e.g. a run's final model.
    """
    state = {k.replace("_orig_mod.", ""): v for k, v in _uncompiled(model).state_dict().items()}
    payload = {
        "format_version": FORMAT_VERSION,
        "model": state,
        "optimizer": {} if optimizer is None else optimizer.state_dict(),
        "iteration": int(iteration),
        "config": config or {},
        "extra": extra or {},
    }
    if not isinstance(out, str | os.PathLike):
        torch.save(payload, out)
        return
    # A crash mid-write leaves the previous checkpoint intact.
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())


def read_checkpoint(src: Source) -> dict[str, Any]:
    """The raw checkpoint dict, tensors on CPU, after checking it is readable and of this FORMAT_VERSION.

    The error says which of three things is wrong: not a torch.save file at all, a torch.save file holding Python
    objects that weights_only loading refuses to unpickle (it could run code), or a truncated or corrupt file.
    """
    head = _head(src)
    if head and not head.startswith(ZIP_MAGIC):
        raise CheckpointError(f"{_name(src)} is not a cs336lm checkpoint: it is not a file written by torch.save "
                              f"(a zip archive); it starts with {head!r}")
    try:
        ckpt = torch.load(src, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = re.search(r"WeightsUnpickler error: (.+?\.)(?: |$)", str(exc), re.M)
        raise CheckpointError(
            f"{_name(src)} is not a cs336lm checkpoint: torch.load(weights_only=True) refused to unpickle it, as it "
            f"holds Python objects other than tensors and plain containers"
            f"{f' ({reason[1]})' if reason else ''}; load it with weights_only=False only if you trust its source"
        ) from exc
    except (RuntimeError, EOFError) as exc:
        raise CheckpointError(f"cannot read checkpoint {_name(src)}: the file is truncated or corrupt "
                              f"({str(exc) or 'it is empty'})") from exc
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise CheckpointError(f"{_name(src)} is not a cs336lm checkpoint: it has no format_version")
    if ckpt["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {_name(src)} has format_version {ckpt['format_version']}, "
            f"but this code reads format_version {FORMAT_VERSION}"
        )
    return ckpt


def load_checkpoint(src: Source, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> int:
    """Restore model (and optimizer) state in place; returns the saved iteration."""
    ckpt = read_checkpoint(src)
    if optimizer is not None and not ckpt["optimizer"]:
        raise CheckpointError(f"checkpoint {_name(src)} holds no optimizer state to restore")
    model = _uncompiled(model)
    saved = {k.replace("_orig_mod.", ""): v for k, v in ckpt["model"].items()}
    _check_fits(saved, model.state_dict(), _name(src))
    model.load_state_dict(saved)
    if optimizer is not None:
        optimizer.load_state_dict(_optimizer_state_for(optimizer, ckpt["optimizer"]))
    return ckpt["iteration"]


def _head(src: Source) -> bytes:
    """The first bytes of a path or a seekable binary file, leaving the file's position where it was."""
    if isinstance(src, str | os.PathLike):
        with open(src, "rb") as f:
            return f.read(len(ZIP_MAGIC))
    position = src.tell()
    head = src.read(len(ZIP_MAGIC))
    src.seek(position)
    return head


def _optimizer_state_for(optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> dict[str, Any]:
    """`saved` as `optimizer` keeps its state, so a checkpoint moves between AdamW implementations (ours and
    torch's fused one): the optimizer's own group flags (fused, foreach, ...) stay, the shared hyperparameters come
    from the checkpoint, and AdamW's step count becomes a tensor for torch's optimizers and an int for ours."""
    current = optimizer.state_dict()["param_groups"]
    if len(current) != len(saved["param_groups"]):
        return saved  # not a layout we know how to translate; let torch report the mismatch
    groups = [{**mine, **{k: v for k, v in theirs.items() if k in mine and k in _SHARED_HYPERPARAMETERS}}
              for mine, theirs in zip(current, saved["param_groups"], strict=True)]
    as_tensor = type(optimizer).__module__.startswith("torch.")
    state = {}
    for index, values in saved["state"].items():
        values = dict(values)
        if "step" in values:
            step = values["step"]
            count = int(step.item()) if isinstance(step, torch.Tensor) else int(step)
            values["step"] = torch.tensor(float(count), dtype=torch.float32) if as_tensor else count
        state[index] = values
    return {"state": state, "param_groups": groups}


_SHARED_HYPERPARAMETERS = ("lr", "betas", "eps", "weight_decay")


def _check_fits(saved: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], name: str) -> None:
    missing = sorted(expected.keys() - saved.keys())
    unexpected = sorted(saved.keys() - expected.keys())
    shapes = [
        f"{k}: checkpoint {tuple(saved[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(saved.keys() & expected.keys())
        if saved[k].shape != expected[k].shape
    ]
    found = {"missing keys": missing, "unexpected keys": unexpected, "shape mismatches": shapes}
    if any(found.values()):
        problems = [f"{label}: {', '.join(items[:10])}{' …' * (len(items) > 10)}" for label, items in found.items()
                    if items]
        raise CheckpointError(
            f"checkpoint {name} does not fit the model; its architecture differs from the model's config ("
            + "; ".join(problems) + ")"
        )


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[TransformerLM, ModelConfig]:
    """Rebuild the model a checkpoint was trained with (from its stored config) and load its weights, in eval mode."""
    ckpt = read_checkpoint(path)
    if not ckpt.get("config"):
        raise CheckpointError(f"checkpoint {os.fspath(path)} stores no config, so its model cannot be rebuilt")
    config = RunConfig.from_dict(ckpt["config"]).model
    del ckpt  # free the optimizer state before building the model
    model = TransformerLM(config)
    load_checkpoint(path, model)
    return model.to(device).eval(), config
