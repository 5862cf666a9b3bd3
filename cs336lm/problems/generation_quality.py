"""How good generated text is (handout §7.2 `generate`, §7.4 `main_experiment`), measured by proxies: distinct-n
(unique n-grams over all n-grams of the sample's words, Li et al. 2016), the repetition rate (n-grams that already
occurred earlier in the same sample), the share of word pairs that real text never has, the sample's own loss under
the model, its length and whether the model ended the text itself with <|endoftext|>; held-out corpus text of the
same length gets the same text proxies, so a sample is judged against real text and not against a fixed number.
Also samples from one model over a grid of temperature × top-p, scored the same way."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

# A sample shows a sign of incoherence when a proxy exceeds held-out corpus text's by this much (our threshold).
INCOHERENCE_MARGIN = 0.10
CORPUS_BYTES = 4 << 20  # corpus text read for the comparison: half as the reference, half held out


def _ngrams(words: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def words(text: str) -> list[str]:
    """The lower-cased, whitespace-separated words of `text` (punctuation stays attached)."""
    return text.lower().split()


def distinct_n(text: str, n: int) -> float | None:
    """Unique word n-grams / all word n-grams of `text` (1.0: nothing repeats); None if it has no n-gram."""
    grams = _ngrams(words(text), n)
    return len(set(grams)) / len(grams) if grams else None


def repetition_rate(text: str, n: int = 4) -> float | None:
    """Share of word n-grams that repeat an earlier n-gram of the same text (0.0: no loops); None if too short."""
    grams = _ngrams(words(text), n)
    if not grams:
        return None
    seen, repeats = set(), 0
    for gram in grams:
        repeats += gram in seen
        seen.add(gram)
    return repeats / len(grams)


def unseen_rate(text: str, seen: set[tuple[str, ...]], n: int = 2) -> float | None:
    """Share of the word n-grams of `text` that are not in `seen` (n-grams of real text); None if too short."""
    grams = _ngrams(words(text), n)
    return sum(g not in seen for g in grams) / len(grams) if grams else None


def text_proxies(text: str, seen: set[tuple[str, ...]]) -> dict[str, float | None]:
    """The proxies of one text: words, distinct-2, repeated 4-grams, and unseen word pairs against `seen`."""
    return {"words": len(words(text)), "distinct_2": distinct_n(text, 2), "repetition_4": repetition_rate(text, 4),
            "unseen_2": unseen_rate(text, seen, 2)}


def _mean(rows: Sequence[Mapping[str, float | None]], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return sum(values) / len(values) if values else None


def compare_with_corpus(texts: Sequence[str], corpus_text: str,
                        separator: str = "<|endoftext|>") -> dict[str, dict[str, float | None]]:
    """Mean text proxies of `texts` ("samples") and of as many held-out corpus passages of the same word counts
    ("corpus"). The corpus' first half gives the word pairs real text has; the passages come from its second half
    at evenly spaced starts, so both are measured against the same reference. `separator` is removed first."""
    corpus = words(corpus_text.replace(separator, " "))
    reference, held_out = corpus[:len(corpus) // 2], corpus[len(corpus) // 2:]
    seen = set(_ngrams(reference, 2))
    samples = [text_proxies(t, seen) for t in texts]
    passages = []
    for i, sample in enumerate(samples):
        length = min(sample["words"], len(held_out))
        start = (len(held_out) - length) * i // max(len(samples), 1)
        passages.append(text_proxies(" ".join(held_out[start:start + length]), seen))
    keys = ("words", "distinct_2", "repetition_4", "unseen_2")
    return {"samples": {k: _mean(samples, k) for k in keys}, "corpus": {k: _mean(passages, k) for k in keys}}


def incoherence_signs(samples: Mapping[str, float | None], corpus: Mapping[str, float | None],
                      margin: float = INCOHERENCE_MARGIN) -> list[str]:
    """The proxies on which `samples` fall behind held-out `corpus` text by more than `margin` (means from
    compare_with_corpus), each as a clause with both numbers; empty when none does."""
    signs = []
    checks = (("unseen_2", "of their word pairs never occur in the reference text"),
              ("repetition_4", "of their word 4-grams repeat an earlier one"))
    for key, what in checks:
        ours, real = samples.get(key), corpus.get(key)
        if ours is not None and real is not None and ours - real > margin:
            signs.append(f"{ours:.0%} {what}, against {real:.0%} for held-out corpus text of the same length")
    return signs


def completion_loss(model: Any, prompt_ids: Sequence[int], completion_ids: Sequence[int]) -> float | None:
    """Mean negative log-likelihood (nats per token) of `completion_ids` after `prompt_ids` under `model` at
    temperature 1, each token conditioned on the same window `generate` gave it (the last context_length ids);
    None for an empty completion."""
    import torch  # here, so that the text proxies load without torch

    if not completion_ids:
        return None
    ids, ctx = list(prompt_ids) + list(completion_ids), model.config.context_length
    targets = range(len(prompt_ids), len(ids))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = 0.0
    with torch.no_grad():
        # Targets within the first window share one forward pass; each later one gets its own sliding window.
        early = [i for i in targets if i <= ctx]
        if early:
            window = torch.tensor([ids[:min(len(ids) - 1, ctx)]], device=device)
            logp = torch.log_softmax(model(window)[0].float(), dim=-1)
            total -= sum(logp[i - 1, ids[i]].item() for i in early)
        late = [i for i in targets if i > ctx]
        for chunk in range(0, len(late), 32):
            batch = late[chunk:chunk + 32]
            windows = torch.tensor([ids[i - ctx:i] for i in batch], device=device)
            logp = torch.log_softmax(model(windows)[:, -1].float(), dim=-1)
            total -= sum(logp[j, ids[i]].item() for j, i in enumerate(batch))
    model.train(was_training)
    return total / len(completion_ids)


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
    quality proxies (and how many sampled ids the tokenizer does not have), among them `sample_loss`, the sample's
    own mean nats per token under the model.

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
                prompt_ids = tokenizer.encode(prompt) or eos_ids
                ids = generate(model, prompt_ids, max_new_tokens, temperature, top_p, eos_id=eos_id, seed=sample_seed)
                stopped = bool(ids) and ids[-1] == eos_id
                text, unknown = decode_known(tokenizer, ids[:-1] if stopped else ids)
                rows.append({"model": os.fspath(model_path), "temperature": temperature, "top_p": top_p,
                             "prompt": prompt, "seed": sample_seed,
                             "new_tokens": len(ids), "stopped_at_eos": stopped, "distinct_1": distinct_n(text, 1),
                             "distinct_2": distinct_n(text, 2), "repetition_4": repetition_rate(text, 4),
                             "unknown_tokens": unknown, "sample_loss": completion_loss(model, prompt_ids, ids),
                             "completion": text})
    return pd.DataFrame(rows)


def grid_summary(samples: pd.DataFrame) -> pd.DataFrame:
    """Mean proxies per (temperature, top_p): samples, new tokens, share stopped at <|endoftext|>, distinct-1/2,
    repetition rate, the samples' own loss under the model, and the total of sampled ids the tokenizer does not
    have. A sample too short for an n-gram has no proxy value (read back from CSV as an empty cell) and is left out
    of that mean."""
    samples = samples.assign(**{c: pd.to_numeric(samples[c], errors="coerce")
                                for c in ("distinct_1", "distinct_2", "repetition_4")})
    return (samples.groupby(["temperature", "top_p"], sort=True)
            .agg(samples=("seed", "size"), new_tokens=("new_tokens", "mean"), stopped_at_eos=("stopped_at_eos", "mean"),
                 distinct_1=("distinct_1", "mean"), distinct_2=("distinct_2", "mean"),
                 repetition_4=("repetition_4", "mean"), sample_loss=("sample_loss", "mean"),
                 unknown_tokens=("unknown_tokens", "sum"))
            .reset_index())
