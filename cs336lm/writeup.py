"""The writeup (report.md) answering every handout §7 deliverable and the §2.7 tokenizer questions.

Every sentence whose truth depends on a result is generated from the runs' `metrics.jsonl`/`summary.json` and the
tables, so the writeup cannot contradict its runs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from cs336lm.report import Runs, load_summary, markdown_table
from cs336lm.summary import RunSummary

REPORT_COLUMNS = ("experiment", "variant", "status", "stopped_early", "final_val_loss", "best_val_loss", "steps",
                  "tokens", "wall_time_s", "tokens_per_s")
PILE_BYTES = 825e9  # the Pile, for the tokenizer-throughput question (handout §2.7 c)
ABLATION_KINDS = (  # (config key, value, heading): which deliverable an ablation variant answers
    ("model.norm", "none", "Layer-norm ablation (handout §7.3 `layer_norm_ablation`)"),
    ("model.norm_position", "post", "Pre-norm vs post-norm (`pre_norm_ablation`)"),
    ("model.pos_emb", "none", "NoPE vs RoPE (`no_pos_emb`)"),
    ("model.ffn", "silu", "SwiGLU vs SiLU (`swiglu_ablation`)"),
)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def _rate(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:,.0f}"


def _outcome(summary: RunSummary) -> str:
    """`final val loss 1.234` or `diverged at step 120`: what a run ended with, in words."""
    if summary.status == "diverged":
        return f"diverged at step {summary.steps}"
    return f"final validation loss {_fmt(summary.final_val_loss)} after {summary.steps} steps"


def _value(summary: RunSummary, key: str) -> Any:
    section, name = key.split(".")
    return summary.config[section][name]


def _best(summaries: Mapping[str, RunSummary]) -> str | None:
    """The label of the finished run with the lowest final validation loss."""
    ok = {k: s.final_val_loss for k, s in summaries.items()
          if s.status == "ok" and s.final_val_loss is not None and math.isfinite(s.final_val_loss)}
    return min(ok, key=ok.get) if ok else None


class _Writer:
    """Collects markdown; knows where report.md lives (for relative links) and where each corpus came from."""

    def __init__(self, out_path: str | os.PathLike, data_sources: Mapping[str, str],
                 datasets: Mapping[str, str]):
        self.out_dir, self.lines = Path(out_path).parent, []
        self.data_sources, self.datasets = data_sources, datasets

    def add(self, *paragraphs: str) -> None:
        self.lines += [p.rstrip() + "\n" for p in paragraphs]

    def figure(self, path: str | os.PathLike | None, alt: str) -> None:
        if path is not None:
            self.add(f"![{alt}]({os.path.relpath(path, self.out_dir)})")

    def section(self, title: str, experiments: list[str | None], figure: str | os.PathLike | None = None,
                alt: str = "") -> bool:
        """Open a section on some experiments' runs: its data's provenance and figure; False if none ran."""
        self.add(f"## {title}")
        experiments = [e for e in experiments if e]
        if not experiments:
            self.add("_Not run in this configuration._")
            return False
        self.provenance(*experiments)
        self.figure(figure, alt)
        return True

    def provenance(self, *experiments: str) -> None:
        """Says whether an experiment's numbers come from synthetic demo text or the course's corpora."""
        datasets = sorted({self.datasets[e] for e in experiments if e in self.datasets})
        notes = [f"`{d}` = {self.data_sources.get(f'{d}/train', 'unknown')}" for d in datasets]
        synthetic = [self.data_sources.get(f"{d}/train", "").startswith("synthetic") for d in datasets]
        kind = "**demo numbers (synthetic corpus)**" if all(synthetic) else \
            "**course-scale data**" if not any(synthetic) else "**mixed: synthetic demo and course-scale corpora**"
        self.add(f"_Data: {kind}; {'; '.join(notes)}._")


def write_report(out_path: str | os.PathLike, *, runs: Mapping[str, Runs], layout: Mapping[str, Any],
                 figures: list[str], samples: list[str], runs_table: str | os.PathLike,
                 tokenizer_stats: str | os.PathLike | None, data_sources: Mapping[str, str],
                 datasets: Mapping[str, str], tokenizer_sizes: Mapping[str, int]) -> None:
    """Write the markdown writeup answering every handout §7 deliverable (and §2.7) from the runs' files.

    `runs` is {experiment: {variant: run dir}}, `layout` the config's report section (which experiment answers
    which deliverable), `figures`/`samples` the files made for it (figures/<name>.png, samples/<exp>/<var>.md),
    `data_sources` {"dataset/split": description}, `datasets` {experiment: dataset}.
    """
    w = _Writer(out_path, data_sources, datasets)
    figure_of = {Path(f).relative_to(Path(f).parents[1] if Path(f).parent.name == "ablations" else Path(f).parent)
                 .with_suffix("").as_posix(): f for f in figures}
    summaries = {e: {v: load_summary(d) for v, d in variants.items()} for e, variants in runs.items()}
    synthetic = sorted(k for k, v in data_sources.items() if v.startswith("synthetic"))
    w.add("# CS336 assignment 1: results", "Generated by the workflow (`write_report`) from the runs' `metrics.jsonl` "
          "and `summary.json`; every number below is read from those files.")
    w.add("**Where the numbers come from.** " + (
        f"Corpora {', '.join(f'`{k}`' for k in synthetic)} are synthetic (the embedded demo): their numbers show that "
        "the pipeline works end to end and how the experiments are read, not the course-scale answers." if synthetic
        else "All corpora are the course datasets (course-scale numbers)."),
        "\n".join(f"- `{k}`: {v}" for k, v in data_sources.items()))
    _tokenizer_section(w, tokenizer_stats, tokenizer_sizes)
    table = pd.read_csv(runs_table, keep_default_na=False)
    w.add("## All runs", markdown_table(table[[c for c in REPORT_COLUMNS if c in table]]),
          "The full table, with parameter counts, MFU and devices, is `tables/runs.csv`.")
    _lr_section(w, layout.get("lr_sweep"), summaries, figure_of)
    _batch_section(w, layout.get("batch_size"), summaries, figure_of)
    _samples_section(w, samples, summaries)
    _ablation_sections(w, layout.get("ablations"), layout.get("ablation_baseline"), summaries, figure_of)
    _main_section(w, layout.get("main") or [], summaries, figure_of)
    _leaderboard_section(w, layout.get("leaderboard"), summaries, figure_of)
    Path(out_path).write_text("\n".join(w.lines), encoding="utf-8")


def _tokenizer_section(w: _Writer, stats_path: str | os.PathLike | None, sizes: Mapping[str, int]) -> None:
    w.add("## Tokenizer experiments (handout §2.7)")
    if stats_path is None or not Path(stats_path).exists():
        w.add("_No tokenizer statistics were computed._")
        return
    table = pd.read_csv(stats_path, keep_default_na=False)
    w.add(markdown_table(table))
    lines = []
    for _, row in table.iterrows():
        own = "its own corpus" if row["tokenizer"] == row["corpus"] else f"`{row['corpus']}` text"
        lines.append(f"- The `{row['tokenizer']}` tokenizer ({sizes.get(row['tokenizer'], '?'):,} tokens) compresses "
                     f"{own} to {_fmt(row['bytes_per_token'], 3)} bytes per token.")
    for corpus in sizes:  # handout §2.7 (b): the same text under its own and the other tokenizer
        rows = table[table["corpus"] == corpus].set_index("tokenizer")["bytes_per_token"].astype(float)
        for other in (t for t in rows.index if t != corpus and corpus in rows.index):
            lines.append(f"- On `{corpus}` text the `{other}` tokenizer gets {_fmt(rows[other], 3)} bytes per token "
                         f"against {_fmt(rows[corpus], 3)} for `{corpus}`'s own: "
                         + ("a tokenizer compresses best the kind of text it was trained on."
                            if rows[other] < rows[corpus] else "here the other tokenizer does as well or better."))
    if "mb_per_s" in table and len(table):
        best = table.loc[table["mb_per_s"].astype(float).idxmax()]
        speed = float(best["mb_per_s"])
        lines.append(f"- Encoding ran at up to {_fmt(speed, 3)} MB/s in one process (`{best['tokenizer']}` on "
                     f"`{best['corpus']}`): the 825 GB Pile would take {_fmt(PILE_BYTES / 1e6 / speed / 3600, 3)} "
                     "hours, divided by the number of worker processes tokenize_corpus is given.")
    if "longest_token" in table:
        for name, group in table.groupby("tokenizer", sort=False):
            lines.append(f"- Longest token of `{name}`: {group['longest_token'].iloc[0]!r} "
                         f"({group['longest_token_bytes'].iloc[0]} bytes).")
    w.add("\n".join(lines))
    largest = max(sizes.values()) if sizes else 0
    w.add(f"- Token ids are stored as uint16: the largest vocabulary here has {largest:,} entries, "
          f"{'below' if largest <= 65536 else 'ABOVE'} 2^16 = 65,536, so every id fits in two bytes (half of int32).")


def _lr_section(w: _Writer, experiment: str | None, summaries: dict, figure_of: dict) -> None:
    if not w.section("Learning-rate sweep (`learning_rate`)", [experiment], figure_of.get("lr_sweep"),
                     "learning-rate sweep"):
        return
    runs = summaries[experiment]
    lr = {v: _value(s, "optim.lr_max") for v, s in runs.items()}
    w.add("\n".join(f"- lr_max = {lr[v]:g}: {_outcome(s)}" for v, s in sorted(runs.items(), key=lambda i: lr[i[0]])))
    best, diverged = _best(runs), sorted(lr[v] for v, s in runs.items() if s.status == "diverged")
    text = f"The best learning rate was {lr[best]:g} (final validation loss {_fmt(runs[best].final_val_loss)})" \
        if best else "No run finished without diverging"
    if diverged:
        stable_above = [lr[v] for v, s in runs.items() if s.status == "ok" and lr[v] > diverged[0]]
        text += f"; rates ≥ {diverged[0]:g} diverged" if not stable_above else \
            f"; rates {', '.join(f'{x:g}' for x in diverged)} diverged (not monotonic in the rate)"
        if best:
            text += (f". The best rate sits a factor {diverged[0] / lr[best]:.3g} below the smallest diverging one: "
                     "the edge of stability lies between them, and the best rate is "
                     f"{'close to' if diverged[0] / lr[best] <= 3.5 else 'well below'} it.")
    else:
        text += ". No rate diverged, so the edge of stability lies above the largest rate tried; extend the grid."
    w.add(text + ("" if text.endswith(".") else "."))


def _batch_section(w: _Writer, experiment: str | None, summaries: dict, figure_of: dict) -> None:
    if not w.section("Batch-size variation (`batch_size_experiment`)", [experiment], figure_of.get("batch_size"),
                     "batch size"):
        return
    runs = summaries[experiment]
    size = {v: _value(s, "train.batch_size") for v, s in runs.items()}
    order = sorted(runs, key=size.get)
    w.add("\n".join(f"- batch {size[v]}: {_outcome(runs[v])}, {_rate(runs[v].tokens_per_s)} tokens/s, "
                    f"{_fmt(runs[v].wall_time_s, 3)} s" for v in order))
    best = _best(runs)
    if best is None:
        w.add("Every batch size diverged.")
        return
    speeds = [runs[v].tokens_per_s or 0 for v in order]
    largest = runs[order[-1]]
    ratio = speeds[-1] / max(speeds[0], 1e-9)
    text = (f"All runs saw the same token budget. The lowest final validation loss came from batch size {size[best]} "
            f"({_fmt(runs[best].final_val_loss)}). Throughput went from {_rate(speeds[0])} tokens/s at batch "
            f"{size[order[0]]} to {_rate(speeds[-1])} at batch {size[order[-1]]} ({_fmt(ratio, 3)}×). ")
    if best == order[-1]:
        text += "The largest batch was both the fastest per token and the best, so its fewer steps were not a limit."
    elif largest.status == "ok":
        text += (f"The largest batch ended {_fmt(largest.final_val_loss - runs[best].final_val_loss, 3)} above "
                 f"the best: at equal tokens it takes {size[best] / size[order[-1]]:.3g}× as many optimizer steps as "
                 "the best batch size, and the learning rate was not scaled up to compensate.")
    w.add(text)


def _samples_section(w: _Writer, samples: list[str], summaries: dict) -> None:
    w.add("## Generated text (`generate`)")
    if not samples:
        w.add("_No samples were generated in this configuration._")
    for path in samples:
        experiment, variant = Path(path).parent.name, Path(path).stem
        summary = summaries.get(experiment, {}).get(variant)
        w.add(f"### {experiment}/{variant}")
        w.provenance(experiment)
        if summary:
            loss = summary.final_val_loss
            w.add(f"The model ({_outcome(summary)}, perplexity {_fmt(math.exp(loss) if loss else None, 3)}) "
                  "generated:")
        w.add(("\n" + Path(path).read_text(encoding="utf-8")).replace("\n#", "\n####").strip())
        if summary and summary.final_val_loss is not None and _is_tinystories(w, experiment):
            synthetic = w.data_sources.get(f"{w.datasets[experiment]}/train", "").startswith("synthetic")
            w.add("Fluency: the handout's target for TinyStories is a validation loss of 1.45 or less, where text "
                  "becomes mostly fluent; " + ("on this synthetic corpus losses are not comparable with that target, "
                                               "so judge the samples above by reading them." if synthetic else
                  f"this run is {'below' if summary.final_val_loss <= 1.45 else 'above'} that mark."))


def _is_tinystories(w: _Writer, experiment: str) -> bool:
    return w.datasets.get(experiment, "").startswith("tinystories")


def _ablation_sections(w: _Writer, experiment: str | None, baseline: str | None, summaries: dict,
                       figure_of: dict) -> None:
    if not experiment:
        w.add("## Ablations", "_Not run in this configuration._")
        return
    runs = summaries[experiment]
    base = runs[baseline]
    base_config = {f"{s}.{k}": v for s, values in base.config.items() for k, v in values.items()}
    w.add("## Ablations (handout §7.3)", f"Baseline `{baseline}`: {_outcome(base)}, "
          f"{base.parameters.non_embedding:,} non-embedding parameters.")
    w.provenance(experiment)
    seen = set()
    for key, value, heading in ABLATION_KINDS:
        variants = [v for v, s in runs.items() if v != baseline and _value(s, key) == value]
        if variants:
            w.add(f"### {heading}")
        for variant in variants:
            seen.add(variant)
            _ablation_paragraph(w, variant, runs[variant], baseline, base, base_config, figure_of)
    rest = [v for v in runs if v != baseline and v not in seen]
    if rest:
        w.add("### Other variants")
    for variant in rest:
        _ablation_paragraph(w, variant, runs[variant], baseline, base, base_config, figure_of)


def _ablation_paragraph(w: _Writer, variant: str, run: RunSummary, baseline: str, base: RunSummary,
                        base_config: dict, figure_of: dict) -> None:
    changed = {k: v for s, values in run.config.items() for k, v in ((f"{s}.{k}", v) for k, v in values.items())
               if base_config.get(k) != v}
    text = f"`{variant}` ({', '.join(f'{k} = {v}' for k, v in changed.items()) or 'same config'}): {_outcome(run)}"
    loss, base_loss = run.final_val_loss, base.final_val_loss
    if run.status == "ok" and base.status == "ok" and loss is not None and base_loss is not None:
        delta = loss - base_loss
        text += f", {abs(delta):.3g} {'above' if delta > 0 else 'below'} the baseline"
        text += " (worse)" if delta > 0 else " (better)"
    elif base.status == "ok" and run.status == "diverged":
        text += ", while the baseline trained stably at its settings"
    params, base_params = run.parameters.non_embedding, base.parameters.non_embedding
    text += f"; {params:,} non-embedding parameters ({(params - base_params) / base_params:+.1%} vs `{baseline}`)."
    w.add(text)
    w.figure(figure_of.get(f"ablations/{variant}"), f"{variant} vs {baseline}")


def _main_section(w: _Writer, experiments: list[str], summaries: dict, figure_of: dict) -> None:
    title = "Main experiments: TinyStories and OpenWebText (`main_experiment`)"
    if not w.section(title, experiments, figure_of.get("main"), "main runs"):
        return
    w.add("\n".join(f"- `{e}/{v}` on `{w.datasets.get(e)}`: {_outcome(s)}, {s.tokens:,} tokens in "
                    f"{_fmt(s.wall_time_s, 3)} s." for e in experiments for v, s in summaries[e].items()))
    finals = {f"{e}/{v}": s.final_val_loss for e in experiments for v, s in summaries[e].items()
              if s.status == "ok" and s.final_val_loss is not None}
    if len(finals) > 1:
        high, low = max(finals, key=finals.get), min(finals, key=finals.get)
        w.add(f"`{high}` ended {_fmt(finals[high] - finals[low], 3)} nats per token above `{low}`. Each loss is per "
              "token of its own dataset's tokenizer, so the gap mixes how hard the text is with how much each token "
              "holds (see the bytes per token above).")


def _leaderboard_section(w: _Writer, experiment: str | None, summaries: dict, figure_of: dict) -> None:
    if not w.section("Leaderboard (`leaderboard`)", [experiment], figure_of.get("leaderboard"), "leaderboard"):
        return
    for variant, s in summaries[experiment].items():
        budget = s.config["train"]["wall_clock_budget_s"]
        limit = f"budget {budget:g} s" if budget else "no wall-clock budget"
        ended = "stopped at the wall-clock budget" if s.stopped_early == "wall_clock" else \
            "finished its token budget before the wall-clock budget" if s.status == "ok" else "diverged"
        w.add(f"- `{variant}`: {_outcome(s)} ({ended}; {limit}, trained {_fmt(s.wall_time_s, 4)} s, "
              f"{_rate(s.tokens_per_s)} tokens/s on {s.device}).")
