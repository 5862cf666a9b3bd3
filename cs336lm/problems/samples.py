"""Sample sheets for the handout's §7.2 `generate` deliverable: prompt → completion pairs from a trained model,
written as markdown for the report, with each sample's own loss under the model (JSON) for judging it."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from cs336lm.atomic import atomic_write_text
from cs336lm.lm.decode import generate
from cs336lm.problems.generation_quality import completion_loss
from cs336lm.training.checkpoint import load_model
from cs336lm.training.device import resolve_device

log = logging.getLogger(__name__)


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
    scores_path: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """Write a markdown sheet of prompt → completion pairs (prompt i seeded with seed + i); returns the samples,
    each with its `loss`: mean nats per new token under the model (the <|endoftext|> it drew included). With
    `scores_path`, the samples and settings are also written there as JSON.

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
        prompt_ids = tokenizer.encode(prompt) or eos_ids
        ids = generate(model, prompt_ids, max_new_tokens, temperature, top_p,
                       eos_id=eos_id, seed=seed + i, known_ids=max(tokenizer.vocab) + 1)
        stopped = bool(ids) and ids[-1] == eos_id
        samples.append({"prompt": prompt, "completion": tokenizer.decode(ids[:-1] if stopped else ids),
                        "new_tokens": len(ids), "stopped_at_eos": stopped,
                        "loss": completion_loss(model, prompt_ids, ids)})
    lines = [f"# Samples from `{os.fspath(model_path)}`", "",
             f"temperature {temperature}, top-p {top_p}, at most {max_new_tokens} new tokens, seed {seed}", ""]
    for i, s in enumerate(samples, 1):
        end = f"stopped at `{eos_token}`" if s["stopped_at_eos"] else "reached the token limit"
        lines += [f"## Sample {i}", "", f"**Prompt:** {s['prompt']!r}", "", "```text",
                  s["prompt"] + s["completion"], "```", "", f"{s['new_tokens']} new tokens, {end}.", ""]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_path, "\n".join(lines))
    if scores_path is not None:
        settings = {"temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens, "seed": seed}
        atomic_write_text(scores_path, json.dumps({"model": os.fspath(model_path), **settings, "samples": samples},
                                                  indent=1))
    return samples
