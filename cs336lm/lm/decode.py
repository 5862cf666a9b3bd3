"""Decoding (handout §6): sampling from a trained TransformerLM with temperature, top-p (nucleus, Holtzman et al.
2020) and top-k truncation, stopping at <|endoftext|>; a key/value cache makes each new token cost one position's
forward pass instead of the whole context's."""

from __future__ import annotations

import torch
from torch import Tensor

from cs336lm.lm.attention import KVCache
from cs336lm.lm.model import TransformerLM


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
