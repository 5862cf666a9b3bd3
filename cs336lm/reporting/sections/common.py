"""Judgements several sections share: a run's final loss as a table cell, where a swept value came from, and the
noise floor every comparison is judged against (cs336lm.experiments.noise)."""

from __future__ import annotations

from typing import Any

from cs336lm.experiments.noise import RULE, NoiseFloor, measure_noise, pooled, read_noise
from cs336lm.reporting.document import MISSING, num
from cs336lm.reporting.inputs import ReportInputs
from cs336lm.reporting.runs import finished, seed_groups


def final_loss(summary: Any) -> str:
    if finished(summary):
        return num(summary.final_val_loss)
    if summary.status == "unstable" and summary.final_val_loss is not None:
        return f"{num(summary.final_val_loss)} (unstable)"
    return "diverged" if summary.status == "diverged" else MISSING


def selected_note(summary: Any, key: str) -> str:
    """Where a config value came from when a sweep chose it (summary.selected), e.g. `from lr_sweep`."""
    chosen = (summary.selected or {}).get(key)
    return f" (from {chosen.source})" if chosen else ""


def noise_estimate(inputs: ReportInputs) -> tuple[NoiseFloor, str]:
    """(the noise floor, how it was measured): from the workflow's noise files (`seeds:` in the config), else from
    the report's runs that differ only in their seed. Its `resolution` is None when nothing was repeated, and
    then every comparison is unresolved."""
    files = inputs.files_under("noise")
    if files:
        noise = pooled(read_noise(path) for path in files.values())
        where = ", ".join(f"`{inputs.relative(path)}`" for path in files.values())
    else:
        summaries = inputs.all_summaries()
        noise = measure_noise("report", {"/".join(group[0]): [summaries[label].final_val_loss for label in group]
                                         for group in seed_groups(summaries)})
        where = "the runs that differ only in their seed"
    if noise.sigma is None:
        return noise, ("No run was repeated with another seed, so the noise floor is not measured: every "
                       "difference below is unresolved.")
    seeds = ", ".join(f"`{variant}` × {len(losses)}" for variant, losses in noise.losses.items() if len(losses) > 1)
    return noise, (f"Noise floor σ = {num(noise.sigma, 3)} nats, from {seeds} ({where}); {RULE}: here "
                   f"{num(noise.resolution, 3)} nats.")
