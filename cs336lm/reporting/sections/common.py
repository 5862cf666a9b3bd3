"""Judgements several sections share: a run's final loss as a table cell, where a swept value came from, and
run-to-run noise estimated from runs repeated with another seed."""

from __future__ import annotations

from typing import Any

from cs336lm.reporting.document import MISSING, num
from cs336lm.reporting.inputs import ReportInputs
from cs336lm.reporting.runs import finished, seed_noise


def final_loss(summary: Any) -> str:
    return num(summary.final_val_loss) if finished(summary) else ("diverged" if summary.status == "diverged"
                                                                  else MISSING)


def selected_note(summary: Any, key: str) -> str:
    """Where a config value came from when a sweep chose it (summary.selected), e.g. `from lr_sweep`."""
    chosen = (summary.selected or {}).get(key)
    return f" (from {chosen.source})" if chosen else ""


def noise_estimate(inputs: ReportInputs) -> tuple[float | None, str]:
    """(noise, how it was estimated) from every run of the report repeated with another seed."""
    noise = seed_noise(inputs.all_summaries())
    if noise is None:
        return None, ("No run was repeated with another seed, so run-to-run noise is not measured here: treat "
                      "differences of a few hundredths of a nat as unresolved.")
    value, pairs = noise
    names = ", ".join(f"`{'/'.join(a)}` vs `{'/'.join(b)}`" for a, b in pairs[:3]) + (
        f" and {len(pairs) - 3} more" if len(pairs) > 3 else "")
    return value, (f"Run-to-run noise, estimated from runs that differ only in their seed ({names}): up to "
                   f"{num(value, 3)} nats in final validation loss.")
