"""Where the report's numbers come from, checked rather than assumed: a corpus is the course's only when both its
splits were downloaded from the course's own URLs, and a run is at the course's scale only when its config is the
handout's (§7.2: model, vocabulary and total tokens). Anything else is the user's data or a reduced run, and the
published numbers of complete course runs are not comparable with it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

# The course's corpora (TinyStories V2 and the OpenWebText sample, as the assignment's README downloads them).
COURSE_URLS = {
    "tinystories": {
        "train": "https://huggingface.co/datasets/roneneldan/TinyStories/resolve/main/TinyStoriesV2-GPT4-train.txt",
        "valid": "https://huggingface.co/datasets/roneneldan/TinyStories/resolve/main/TinyStoriesV2-GPT4-valid.txt",
    },
    "owt": {
        "train": "https://huggingface.co/datasets/stanford-cs336/owt-sample/resolve/main/owt_train.txt.gz",
        "valid": "https://huggingface.co/datasets/stanford-cs336/owt-sample/resolve/main/owt_valid.txt.gz",
    },
}
COURSE_VOCAB = {"tinystories": 10_000, "owt": 32_000}  # handout §2.5: train_bpe_tinystories, train_bpe_expts_owt
# Handout §7.2: "context_length 256", "d_model 512", "d_ff 1344", "RoPE theta parameter Θ 10000", "4 layers,
# 16 heads", and "total tokens processed 327,680,000".
COURSE_MODEL = {"context_length": 256, "d_model": 512, "d_ff": 1344, "rope_theta": 10000.0, "num_layers": 4,
                "num_heads": 16}
COURSE_TOKENS = 327_680_000


def course_corpus(spec: Mapping[str, Any]) -> str | None:
    """The course corpus whose URLs a dataset's splits were downloaded from (`urls` of the report's dataset facts),
    or None for synthetic text and the user's own data."""
    urls = spec.get("urls") or {}
    return next((name for name, course in COURSE_URLS.items()
                 if all(urls.get(split) == url for split, url in course.items())), None)


def describe_dataset(name: str, spec: Mapping[str, Any], size: str | None = None) -> str:
    """One line: synthetic, the course's (and whether its checksum was checked), or the user's (source, and `size`,
    the training text's size in words)."""
    if spec.get("synthetic"):
        return (f"`{name}`: demo numbers (synthetic corpus), {spec.get('source', 'unknown')}: the embedded demo's "
                "text, not the course's")
    course = course_corpus(spec)
    sized = f", {size} of training text" if size else ""
    if course is None:
        return (f"`{name}`: the user's data from {spec.get('source', 'an unknown source')}{sized}: not the course's "
                "URLs, so not the course's corpus")
    checked = [split for split, digest in (spec.get("sha256") or {}).items() if digest]
    check = (f"sha256 checked on download ({', '.join(sorted(checked))})" if checked else
             "no sha256 in the config, so its content is not checked against the course's files")
    return f"`{name}`: the course's {course} corpus, downloaded from the course's URLs{sized}; {check}"


def reduced_data(datasets: Mapping[str, Mapping[str, Any]], names: Iterable[str]) -> list[str]:
    """Why these datasets are not the course's data at the course's vocabulary; [] if they are."""
    reasons = []
    for name in names:
        spec = datasets.get(name, {})
        course = course_corpus(spec)
        if spec.get("synthetic"):
            reasons.append(f"`{name}` is the demo's synthetic text")
        elif course is None:
            reasons.append(f"`{name}` is the user's data, not the course's")
        elif spec.get("vocab_size") != COURSE_VOCAB[course]:
            reasons.append(f"`{name}` asks for a vocabulary of {spec.get('vocab_size')}, not the course's "
                           f"{COURSE_VOCAB[course]:,}")
    return reasons


def reduced_run(config: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """How a run's config differs from the course's model and token budget; [] for a course-scale run."""
    model, train = config["model"], config["train"]
    course = dict(COURSE_MODEL)
    if model.get("ffn") == "silu":  # handout §7.3: "set d_ff = 4 × d_model" for the SiLU ablation
        course["d_ff"] = 4 * COURSE_MODEL["d_model"]
    reasons = [f"{key} {model.get(key):g} (course {value:g})" for key, value in course.items()
               if not math.isclose(float(model.get(key, math.nan)), value)]
    if not math.isclose(train["token_budget"], COURSE_TOKENS, rel_tol=0.01):
        reasons.append(f"{train['token_budget']:,} tokens (course {COURSE_TOKENS:,})")
    return reasons
