"""Decoding (handout §6): sampling from a trained TransformerLM with temperature, top-p (nucleus, Holtzman et al.
2020) and top-k truncation, stopping at <|endoftext|>; a key/value cache makes each new token cost one position's
forward pass instead of the whole context's. Also loads model.pt files and writes sample sheets for the report.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from cs336lm.atomic import atomic_write_text
from cs336lm.attention import KVCache
from cs336lm.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from cs336lm.config import ModelConfig, RunConfig
from cs336lm.device import resolve_device
from cs336lm.model import TransformerLM

log = logging.getLogger(__name__)


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


@torch.no_grad()
def generate(
    model: TransformerLM,
    prompt_ids: list[int],
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int | None = None,
    eos_id: int | None = None,
    seed: int | None = None,
    kv_cache: bool = True,
    known_ids: int | None = None,
) -> list[int]:
    """Sample up to max_new_tokens ids after prompt_ids; returns only the new ids, ending with eos_id if drawn.

    temperature 0 is greedy decoding. Once prompt and completion fill the context window, the oldest tokens slide
    out and each step reruns the window (RoPE positions restart at 0, as in training). `known_ids` limits sampling
    to ids below it: a tokenizer whose BPE ran out of merges before the model's vocab_size cannot decode the rest.
    """
    if not prompt_ids:
        raise ValueError("generate needs at least one prompt token (e.g. the <|endoftext|> id)")
    if temperature < 0 or not 0 < top_p <= 1 or (top_k is not None and top_k < 1):
        raise ValueError(f"need temperature >= 0, 0 < top_p <= 1, top_k >= 1; got {temperature}, {top_p}, {top_k}")
    ctx = model.config.context_length
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    was_training = model.training
    model.eval()
    context = list(prompt_ids)[-ctx:]
    caches = [KVCache() for _ in model.layers] if kv_cache else None
    logits = model(torch.tensor([context], device=device), kv_caches=caches)[0, -1]
    new: list[int] = []
    for _ in range(max_new_tokens):
        token = _sample(logits, temperature, top_p, top_k, generator, known_ids)
        new.append(token)
        if token == eos_id or len(new) == max_new_tokens:
            break
        context.append(token)
        if caches is not None and caches[0].length < ctx:
            logits = model(torch.tensor([[token]], device=device), kv_caches=caches)[0, -1]
        else:
            caches = None  # the window is full: positions would run past the RoPE table, so slide instead
            logits = model(torch.tensor([context[-ctx:]], device=device))[0, -1]
    model.train(was_training)
    return new


def _sample(logits: Tensor, temperature: float, top_p: float, top_k: int | None,
            generator: torch.Generator | None, known_ids: int | None = None) -> int:
    logits = logits.float()
    if known_ids is not None and known_ids < logits.numel():
        logits = logits.masked_fill(torch.arange(logits.numel(), device=logits.device) >= known_ids, float("-inf"))
    if temperature == 0:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k is not None and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p < 1:
        # Keep the smallest set of most likely tokens whose mass reaches top_p (always at least the top token).
        sorted_probs, order = torch.sort(probs, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs >= top_p
        sorted_probs[outside] = 0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator))


def write_samples(
    model_path: str | os.PathLike,
    tokenizer: Any,
    prompts: list[str],
    out_path: str | os.PathLike,
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    top_p: float = 0.9,
    seed: int = 0,
    eos_token: str = "<|endoftext|>",
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Write a markdown sheet of prompt → completion pairs (prompt i seeded with seed + i); returns the samples.

    `tokenizer` needs encode(str) -> list[int], decode(list[int]) -> str and vocab {id: bytes}
    (cs336lm.tokenization.Tokenizer); only ids it has are sampled.
    """
    model, _ = load_model(model_path, device=resolve_device(device))
    eos_ids = tokenizer.encode(eos_token)
    eos_id = eos_ids[0] if len(eos_ids) == 1 else None
    if eos_id is None:
        log.warning("%r is not a single token in this tokenizer; samples run to max_new_tokens", eos_token)
    samples = []
    for i, prompt in enumerate(prompts):
        ids = generate(model, tokenizer.encode(prompt) or eos_ids, max_new_tokens, temperature, top_p,
                       eos_id=eos_id, seed=seed + i, known_ids=max(tokenizer.vocab) + 1)
        stopped = bool(ids) and ids[-1] == eos_id
        samples.append({"prompt": prompt, "completion": tokenizer.decode(ids[:-1] if stopped else ids),
                        "new_tokens": len(ids), "stopped_at_eos": stopped})
    lines = [f"# Samples from `{os.fspath(model_path)}`", "",
             f"temperature {temperature}, top-p {top_p}, at most {max_new_tokens} new tokens, seed {seed}", ""]
    for i, s in enumerate(samples, 1):
        end = f"stopped at `{eos_token}`" if s["stopped_at_eos"] else "reached the token limit"
        lines += [f"## Sample {i}", "", f"**Prompt:** {s['prompt']!r}", "", "```text",
                  s["prompt"] + s["completion"], "```", "", f"{s['new_tokens']} new tokens, {end}.", ""]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_path, "\n".join(lines))
    return samples
