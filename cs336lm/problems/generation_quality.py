"""What makes generated text good or bad (handout §7.2 `generate`), measured: samples from one model over a grid of
temperature × top-p, each scored by simple proxies: distinct-n (unique n-grams over all n-grams of the sample's
words, Li et al. 2016), the repetition rate (n-grams that already occurred earlier in the same sample), length,
and whether the model ended the text itself with <|endoftext|>."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd


def _ngrams(words: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def distinct_n(text: str, n: int) -> float | None:
    """Unique word n-grams / all word n-grams of `text` (1.0: nothing repeats); None if it has no n-gram."""
    grams = _ngrams(text.lower().split(), n)
    return len(set(grams)) / len(grams) if grams else None


def repetition_rate(text: str, n: int = 4) -> float | None:
    """Share of word n-grams that repeat an earlier n-gram of the same text (0.0: no loops); None if too short."""
    grams = _ngrams(text.lower().split(), n)
    if not grams:
        return None
    seen, repeats = set(), 0
    for gram in grams:
        repeats += gram in seen
        seen.add(gram)
    return repeats / len(grams)


def decode_known(tokenizer: Any, ids: Sequence[int]) -> tuple[str, int]:
    """(text, number of unknown ids): ids the tokenizer's vocabulary lacks become U+FFFD. A model's vocabulary can
    be larger than the merges its BPE found, and high temperatures do sample those never-trained ids."""
    vocab = getattr(tokenizer, "vocab", None)
    if vocab is None or all(i in vocab for i in ids):
        return tokenizer.decode(list(ids)), 0
    pieces, run = [], []
    for i in ids:
        if i in vocab:
            run.append(i)
        else:
            pieces += [tokenizer.decode(run), "\ufffd"]
            run = []
    pieces.append(tokenizer.decode(run))
    return "".join(pieces), sum(i not in vocab for i in ids)


def sample_grid(model_path: str | os.PathLike, tokenizer: Any, prompts: Sequence[str], *,
                temperatures: Sequence[float], top_ps: Sequence[float], samples_per_prompt: int = 1,
                max_new_tokens: int = 256, seed: int = 0, eos_token: str = "<|endoftext|>",
                device: str = "auto") -> pd.DataFrame:
    """One row per sample: the model file, its setting (temperature, top_p), prompt, seed, completion text and
    quality proxies (and how many sampled ids the tokenizer does not have).

    Every setting draws from the same seeds, so settings differ only in how they sample. `tokenizer` needs
    encode(str) -> list[int] and decode(list[int]) -> str.
    """
    # Imported here so that the proxies, which the report's figures and sections use, do not load torch.
    from cs336lm.lm.decode import generate
    from cs336lm.training.checkpoint import load_model
    from cs336lm.training.device import resolve_device

    model, _ = load_model(model_path, device=resolve_device(device))
    eos_ids = tokenizer.encode(eos_token)
    eos_id = eos_ids[0] if len(eos_ids) == 1 else None
    rows = []
    for temperature, top_p in itertools.product(temperatures, top_ps):
        for p, prompt in enumerate(prompts):
            for s in range(samples_per_prompt):
                sample_seed = seed + p * samples_per_prompt + s
                ids = generate(model, tokenizer.encode(prompt) or eos_ids, max_new_tokens, temperature, top_p,
                               eos_id=eos_id, seed=sample_seed)
                stopped = bool(ids) and ids[-1] == eos_id
                text, unknown = decode_known(tokenizer, ids[:-1] if stopped else ids)
                rows.append({"model": os.fspath(model_path), "temperature": temperature, "top_p": top_p,
                             "prompt": prompt, "seed": sample_seed,
                             "new_tokens": len(ids), "stopped_at_eos": stopped, "distinct_1": distinct_n(text, 1),
                             "distinct_2": distinct_n(text, 2), "repetition_4": repetition_rate(text, 4),
                             "unknown_tokens": unknown, "completion": text})
    return pd.DataFrame(rows)


def grid_summary(samples: pd.DataFrame) -> pd.DataFrame:
    """Mean proxies per (temperature, top_p): samples, new tokens, share stopped at <|endoftext|>, distinct-1/2,
    repetition rate, and the total of sampled ids the tokenizer does not have. A sample too short for an n-gram
    has no proxy value (read back from CSV as an empty cell) and is left out of that mean."""
    samples = samples.assign(**{c: pd.to_numeric(samples[c], errors="coerce")
                                for c in ("distinct_1", "distinct_2", "repetition_4")})
    return (samples.groupby(["temperature", "top_p"], sort=True)
            .agg(samples=("seed", "size"), new_tokens=("new_tokens", "mean"), stopped_at_eos=("stopped_at_eos", "mean"),
                 distinct_1=("distinct_1", "mean"), distinct_2=("distinct_2", "mean"),
                 repetition_4=("repetition_4", "mean"), unknown_tokens=("unknown_tokens", "sum"))
            .reset_index())
