"""Markdown building blocks of the writeup: a Section collects one deliverable's paragraphs, tables, figures and
the files its numbers come from; number formatting is defined once here so every section reads the same."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from cs336lm.reporting.inputs import ReportInputs
from cs336lm.reporting.provenance import describe_dataset, reduced_data, reduced_run
from cs336lm.reporting.reference import Reference

MISSING = "—"


def num(value: float | None, digits: int = 4) -> str:
    """`value` to `digits` significant digits; a dash when there is no finite value."""
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return MISSING
    return f"{value:.{digits}g}"


def count(value: float | None) -> str:
    return MISSING if value is None or not math.isfinite(value) else f"{value:,.0f}"


def size(n_bytes: float | None) -> str:
    """Bytes in decimal units (GB = 10⁹ bytes, as memory budgets are stated)."""
    if n_bytes is None or not math.isfinite(n_bytes):
        return MISSING
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.3g} {unit}"
    return f"{n_bytes:.0f} B"


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return MISSING
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def flops(value: float) -> str:
    """FLOPs in engineering units (1.23 TFLOP)."""
    for unit, scale in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6)):
        if value >= scale:
            return f"{value / scale:.4g} {unit}"
    return f"{value:.4g} FLOP"


def times(factor: float) -> str:
    """A ratio as `3.16×` or `1,000×`."""
    return f"{factor:,.0f}×" if factor >= 100 else f"{factor:.3g}×"


def percent(share: float | None) -> str:
    return MISSING if share is None or not math.isfinite(share) else f"{100 * share:.1f}%"


def markdown_table(rows: pd.DataFrame | Sequence[Mapping[str, Any]]) -> str:
    """A markdown table of already-formatted cells (numbers are formatted by the caller, so tables agree with
    the prose), or a placeholder when there is no row."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if not len(frame):
        return "_(no rows)_"
    return frame.astype(str).to_markdown(index=False, disable_numparse=True)


def file_size(path: str | os.PathLike | None) -> str | None:
    return size(os.path.getsize(path)) if path and os.path.exists(path) else None


class Section:
    """One deliverable's part of the writeup. `figures` maps figure name -> caption (the registry's)."""

    def __init__(self, inputs: ReportInputs, reference: Reference, out_dir: str | os.PathLike,
                 figures: Mapping[str, str]):
        self.inputs, self.reference, self.out_dir = inputs, reference, Path(out_dir)
        self.figures = dict(figures)
        self.lines: list[str] = []
        self.placed: set[str] = set()
        self.sources: list[str] = []

    def say(self, *paragraphs: str) -> None:
        self.lines += [p.rstrip() for p in paragraphs if p]

    def bullets(self, items: Iterable[str]) -> None:
        self.say("\n".join(f"- {item}" for item in items))

    def table(self, rows: pd.DataFrame | Sequence[Mapping[str, Any]]) -> None:
        self.say(markdown_table(rows))

    def figure(self, name: str) -> None:
        """Place a registered figure (once), with its caption; nothing if this configuration did not draw it."""
        path = self.inputs.file(f"figure/{name}")
        if path is None or name in self.placed:
            return
        self.placed.add(name)
        caption = self.figures.get(name, name)
        self.say(f"![{caption}]({os.path.relpath(path, self.out_dir)})", f"*Figure `{name}`: {caption}*")

    def remaining_figures(self) -> None:
        for name in self.figures:
            self.figure(name)

    def read_from(self, *paths: str | os.PathLike) -> None:
        """Record the files this section's numbers come from (shown once at its end, relative to the results
        root); a pattern such as `runs/*/*/summary.json` is shown as given."""
        for path in paths:
            text = str(path) if "*" in str(path) else self.inputs.relative(path)
            if text not in self.sources:
                self.sources.append(text)

    def data_note(self, datasets: Sequence[str], runs: Iterable[Any] = ()) -> None:
        """Say where this section's numbers come from: the demo's synthetic text, the course's corpora or the
        user's data, and for `runs` (summaries) whether they ran at the course's scale. The reference column is
        comparable only for course data at the course's vocabulary and scale; otherwise the section says why not."""
        specs = self.inputs.datasets
        notes = [describe_dataset(d, specs[d], file_size(specs[d].get("train_text"))) for d in datasets if d in specs]
        reasons = reduced_data(specs, datasets)
        runs = list(runs)
        scaled = sorted({", ".join(why) for sm in runs if (why := reduced_run(sm.config))})
        if scaled:
            reasons.append("reduced scale: " + "; ".join(scaled))
        self.reference.not_comparable = "; ".join(reasons) or None
        scale = ("" if not runs else "; runs at the course's scale (handout §7.2 model and 327,680,000 tokens)"
                 if not scaled else "; runs at a **reduced scale** (" + "; ".join(scaled) + ")")
        self.say("_Data: " + "; ".join(notes) + scale + "._")

    def finish(self) -> str:
        self.remaining_figures()
        note = self.reference.sources_note()
        if note:
            self.say(note)
        if self.sources:
            self.say("_Read from: " + ", ".join(f"`{s}`" for s in self.sources) + "._")
        return "\n\n".join(self.lines)
