"""A dataset of a workflow config (`data.<dataset>`) in the words the workflow and the report use: where a split's
text comes from, and the special tokens its tokenizer keeps whole."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFAULT_SPECIAL_TOKENS = ("<|endoftext|>",)


def describe_source(source: Mapping[str, Any]) -> str:
    """Where a corpus split comes from in one line, so the report can tell demo numbers from course ones."""
    if "synthetic" in source:
        s = source["synthetic"]
        return f"synthetic ({s.get('style', 'tinystories')} style, {s['bytes']:,} bytes, seed {s.get('seed', 0)})"
    return source["url"]


def special_tokens(dataset: Mapping[str, Any]) -> list[str]:
    """The special tokens of a dataset's tokenizer (`tokenizer.special_tokens`, by default <|endoftext|>)."""
    return list(dataset["tokenizer"].get("special_tokens", DEFAULT_SPECIAL_TOKENS))
