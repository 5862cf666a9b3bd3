"""Synthetic corpora in TinyStories V2's file format, for machines that cannot download the real data sets.

`write_stories` streams seeded template-grammar documents, each followed by "\\n<|endoftext|>\\n" as in
TinyStoriesV2-GPT4-train.txt: children's stories (`style="tinystories"`) stand in for TinyStories and short
news/how-to/blog posts (`style="web"`) for OpenWebText, so the embedded demo has two registers to contrast.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from cs336lm.atomic import atomic_path
from cs336lm.corpora.words import (
    ARCS,
    BLOG,
    BOY_NAMES,
    CHEERS,
    ENDINGS,
    FRIEND_SETUPS,
    GIRL_NAMES,
    NEWS,
    OPENINGS,
    PRONOUNS,
    REACTIONS,
    SETUPS,
    STEPS,
    TOPICS,
    WEB,
    WORDS,
)

log = logging.getLogger(__name__)

STYLES = ("tinystories", "web")
_FLUSH_BYTES = 1 << 20  # write in ~1 MiB blocks: bounded memory for any size, few syscalls


def _two(rng: random.Random, templates: tuple[str, ...]) -> tuple[str, str]:
    """Two distinct templates (rng.sample's algorithm is stable too, but this is cheaper and obviously so)."""
    i = rng.randrange(len(templates))
    j = (i + 1 + rng.randrange(len(templates) - 1)) % len(templates)
    return templates[i], templates[j]


class _Slots(dict):
    """Template slots drawn from WORDS on first use, so a story pays only for the words its templates mention."""

    def __init__(self, rng: random.Random, **fixed: object) -> None:
        super().__init__(fixed)
        self.rng = rng

    def __missing__(self, key: str) -> str:
        self[key] = value = self.rng.choice(WORDS[key])
        return value


def _story(rng: random.Random) -> str:
    kind = "girl" if rng.random() < 0.5 else "boy"
    name = rng.choice(GIRL_NAMES if kind == "girl" else BOY_NAMES)
    fkind = "girl" if rng.random() < 0.5 else "boy"
    friend = rng.choice(GIRL_NAMES if fkind == "girl" else BOY_NAMES)
    while friend == name:
        friend = rng.choice(GIRL_NAMES if fkind == "girl" else BOY_NAMES)
    slots = _Slots(rng, **PRONOUNS[kind], kind=kind, name=name, friend=friend, FHe=PRONOUNS[fkind]["He"],
                   age=rng.randrange(3, 10), ftrait=rng.choice(WORDS["trait"]))
    color, obj = rng.choice(WORDS["color"]), rng.choice(WORDS["obj"])
    slots.update(color=color, obj=obj, a_obj=("an " if color[0] in "aeiou" else "a ") + color + " " + obj)
    problem, attempts, resolutions, morals = rng.choice(ARCS)
    first, second = _two(rng, attempts)
    paragraphs = (
        (rng.choice(OPENINGS), rng.choice(FRIEND_SETUPS), rng.choice(SETUPS)),
        (rng.choice(problem), rng.choice(REACTIONS), first, second),
        (rng.choice(resolutions), rng.choice(CHEERS), rng.choice(morals))
        + ((rng.choice(ENDINGS),) if rng.random() < 0.5 else ()),
    )
    # TinyStories mixes one-paragraph stories with ones broken by blank lines; so do we.
    sep = "\n\n" if rng.random() < 0.4 else " "
    return sep.join(" ".join(p.format_map(slots) for p in para) for para in paragraphs)


def _web_post(rng: random.Random) -> str:
    topic, org, things = rng.choice(TOPICS)
    t = list(things)
    rng.shuffle(t)  # shuffle's algorithm is stable across Python versions for a seeded Random
    s = {key: rng.choice(words) for key, words in WEB.items()}
    year = rng.randrange(2008, 2020)
    s.update(topic=topic, org=org, t0=t[0], t1=t[1], t2=t[2], t3=t[3], City=s["city"], year=year,
             person=f"{s['first']} {rng.choice(WEB['last'])}", pct=rng.randrange(2, 40), pct2=rng.randrange(10, 60),
             pct3=rng.randrange(3, 10), amount=f"{rng.randrange(1, 900)}.{rng.randrange(10)}",
             small=rng.randrange(50, 999), day=rng.randrange(1, 29), day2=rng.randrange(1, 29),
             hour=rng.randrange(5, 8), mm=f"{rng.randrange(1, 13):02d}", slug=topic.replace(" ", "-"),
             n=rng.randrange(2, 15), lo=rng.randrange(10, 100), hi=rng.randrange(100, 2000),
             Verdict2=rng.choice(WEB["verdict"]).capitalize(), Topic=topic.title(),
             year2=year + rng.randrange(1, 5), big=f"{rng.randrange(1, 9)},{rng.randrange(1000):03d}")
    kind = rng.randrange(3)
    if kind == 0:
        title = rng.choice(("{City} Approves New Plan for {Topic}", "Report: {Topic} Costs Up {pct}% Since {year}",
                            "What the New {Topic} Rules Mean for {City} Residents"))
        body = [f"{s['city'].upper()}, {s['month']} {s['day']}, {year} -- " + rng.choice(NEWS[0])]
        body += [rng.choice(group) for group in NEWS[1:] if rng.random() < 0.8]
    elif kind == 1:
        title = rng.choice(("How to Get Started with {Topic}: {n} Simple Steps", "A Beginner's Guide to {Topic}",
                            "{Topic} 101: What I Wish I Knew"))
        steps = [rng.choice(STEPS).replace("{t}", t[i % 4]) for i in range(rng.randrange(3, 7))]
        body = ["If you have ever wondered where to begin with {topic}, you are not alone. This guide takes about "
                "{n} minutes to read.",
                "\n".join(f"{i}. {step}" for i, step in enumerate(steps, 1)),
                "Updated {month} {day}, {year}. Have a question? Email us at help@{domain}."]
    else:
        title = rng.choice(("{n} Things I Learned About {Topic} in {year}", "Is {Topic} Worth It? An Honest Review"))
        body = list(BLOG[:2]) + [
            "\n".join(f"- {x}: {rng.choice(WEB['verdict'])}" for x in t),
            rng.choice(BLOG[2:]),
            "What do you think? Let us know in the comments or at https://{domain}/{slug}.",
        ]
    return "\n\n".join([title.format_map(s)] + [p.format_map(s) for p in body])


_GENERATORS: dict[str, Callable[[random.Random], str]] = {"tinystories": _story, "web": _web_post}


def iter_documents(seed: int, style: str = "tinystories") -> Iterator[str]:
    """Endless seeded documents of one style (checked now, not at the first next()); same seed, same sequence."""
    if style not in _GENERATORS:
        raise ValueError(f"unknown synthetic style {style!r}; choose one of {', '.join(STYLES)}")
    return map(_GENERATORS[style], itertools.repeat(random.Random(seed)))


def write_stories(out_path: str | os.PathLike, num_bytes: int, seed: int, special_token: str = "<|endoftext|>",
                  style: str = "tinystories") -> None:
    """Write whole documents, each followed by "\\n{special_token}\\n", until at least num_bytes UTF-8 bytes.

    The output is a prefix-stable function of (seed, style): a bigger num_bytes only appends documents.
    Written to a temporary file beside out_path and renamed into place, so a killed job leaves no half file.
    """
    if isinstance(num_bytes, bool) or not isinstance(num_bytes, int) or num_bytes <= 0:
        raise ValueError(f"num_bytes must be a positive int, got {num_bytes!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if not special_token:
        raise ValueError("special_token must be a non-empty string")
    docs = iter_documents(seed, style)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    suffix = f"\n{special_token}\n"
    start = time.monotonic()
    with atomic_path(out_path) as tmp, open(tmp, "wb") as f:
        written, count, block, block_bytes = 0, 0, [], 0
        while written < num_bytes:
            data = (next(docs) + suffix).encode()
            count += 1
            block.append(data)
            block_bytes += len(data)
            written += len(data)
            if block_bytes >= _FLUSH_BYTES:
                f.write(b"".join(block))
                block, block_bytes = [], 0
        f.write(b"".join(block))
    seconds = time.monotonic() - start
    log.info("wrote %d %s documents, %d bytes, to %s in %.1f s (%.1f MB/s)", count, style, written, out_path,
             seconds, written / 1e6 / max(seconds, 1e-9))
