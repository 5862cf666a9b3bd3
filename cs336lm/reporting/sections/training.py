"""Handout §7.1–§7.2: the experiment log (`experiment_log`), the learning-rate sweep and its edge of stability
(`learning_rate`), batch sizes (`batch_size_experiment`) and generation (`generate`), answered from the runs'
summary.json and metrics.jsonl, the sweep's selection file and the samples."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from cs336lm.experiments.selection import Optimum, Selection, read_selection
from cs336lm.problems.generation_quality import grid_summary
from cs336lm.reporting.datasets import read_json
from cs336lm.reporting.document import MISSING, Section, count, duration, num, percent, times
from cs336lm.reporting.figures import TINYSTORIES_TARGET
from cs336lm.reporting.inputs import ReportInputs
from cs336lm.reporting.runs import (
    best_run,
    config_value,
    divergence_rule,
    finished,
    load_metrics,
    outcome,
    runs_table,
    stability_edge,
)
from cs336lm.reporting.sections.common import final_loss, noise_estimate, selected_note
from cs336lm.training.divergence import OUTCOMES


def experiment_log(s: Section, inputs: ReportInputs) -> None:
    s.say("Every run logs one JSON line per log step to `runs/<experiment>/<variant>/metrics.jsonl` (step, tokens, "
          "wall-clock seconds, learning rate, training loss, gradient norm, throughput, and the validation loss on "
          "evaluation steps) and ends with `summary.json` (status, final and best validation loss, tokens, wall "
          "time, parameters, MFU, the resolved config, code version and device). Every curve and number of this "
          "report is read from those files; the table below is the experiment log of every run (also "
          "`tables/runs.csv`).")
    table = runs_table(inputs.experiments)
    s.table([{"experiment": r.experiment, "variant": r.variant,
              "status": r.status + (f" ({r.stopped_early})" if r.stopped_early and r.stopped_early != r.status
                                    else ""),
              "final val loss": num(r.final_val_loss), "best val loss": num(r.best_val_loss), "steps": count(r.steps),
              "tokens": count(r.tokens), "wall time": duration(r.wall_time_s), "tokens/s": count(r.tokens_per_s),
              "device": r.device or MISSING,
              **({"time asked / used": _asked_used(r)} if table.requested_minutes.notna().any() else {})}
             for r in table.itertuples()])
    _final_eval_note(s, inputs)
    _request_note(s, table)
    s.read_from("runs/*/*/summary.json", "runs/*/*/metrics.jsonl",
                *(["runs/*/*/request.json"] if table.requested_minutes.notna().any() else []))


def _final_eval_note(s: Section, inputs: ReportInputs) -> None:
    """What every final validation loss was measured on: the whole split, or the configured number of tokens."""
    scopes = {}
    for summary in inputs.all_summaries().values():
        if summary.final_val_tokens:
            whole = summary.config["train"].get("final_eval_tokens", 0) == 0
            scopes[(summary.dataset.name, whole)] = summary.final_val_tokens
    if scopes:
        s.say("Every final validation loss is measured once training ends, on "
              + "; ".join(f"{'the whole validation split' if whole else 'the first'} of `{dataset}` "
                          f"({count(tokens)} tokens{'' if whole else ', as train.final_eval_tokens configures'})"
                          for (dataset, whole), tokens in sorted(scopes.items(), key=str))
              + "; the curves' validation points use a fixed sample of it (`train.eval_batches` batches).")


def _asked_used(row: Any) -> str:
    if pd.isna(row.requested_minutes):
        return MISSING
    resumed = pd.notna(row.resumed) and bool(row.resumed)
    return f"{row.requested_minutes:,g} / {row.used_minutes:,.1f} min" + (", resumed" if resumed else "")


def _request_note(s: Section, table: pd.DataFrame) -> None:
    """Runs whose scheduler time request was far off: under half of it used, or resumed after a kill."""
    asked = table.dropna(subset=["requested_minutes"])
    if not len(asked):
        return
    names = lambda rows: ", ".join(f"`{r.experiment}/{r.variant}`" for r in rows.itertuples())  # noqa: E731
    s.say("Time asked of the scheduler against time used (training and evaluation; start-up and saving aside) "
          "comes from each run's `request.json` (the workflow sizes it from the throughput table in the profile, "
          "`cs336lm.experiments.cost`).")
    idle = asked[asked.used_minutes < asked.requested_minutes / 2]
    if len(idle):
        which = (f"all {len(asked)} runs" if len(idle) == len(asked) else
                 f"{len(idle)} of {len(asked)} runs ({names(idle.head(8))}"
                 + (f" and {len(idle) - 8} more" if len(idle) > 8 else "") + ")")
        s.say(f"{which[0].upper()}{which[1:]} used under half of the time they asked for: the throughput table is "
              "pessimistic for them, or the scheduler's minimum request and start-up dominate short runs; the "
              "measured tokens/s above is what to write into the table.")
    resumed = asked[asked.resumed.eq(True)]
    if len(resumed):
        s.say(f"Resumed from its checkpoint after an earlier attempt was killed (at its time limit, or preempted) or "
              f"failed: {names(resumed)}. A retry by Snakemake asks for twice the time.")


def _mid_training_val(run_dir: str) -> float | None:
    """The validation loss at the evaluation closest to half of the run's steps (how fast it converged)."""
    frame = load_metrics(run_dir)
    evals = frame.dropna(subset=["val_loss"]) if len(frame) else frame
    if not len(evals):
        return None
    middle = evals.step.max() / 2
    return float(evals.iloc[(evals.step - middle).abs().argmin()].val_loss)


def learning_rate(s: Section, inputs: ReportInputs) -> None:
    s.data_note(inputs.datasets_of("lr_sweep"))
    runs, summaries = inputs.runs("lr_sweep"), inputs.summaries("lr_sweep")
    lr = {label: config_value(sm, "optim.lr_max") for label, sm in summaries.items()}
    order = sorted(summaries, key=lr.get)
    rates = [lr[k] for k in order]
    selection_path = inputs.file("selection/lr_sweep")
    selection = read_json(selection_path) if selection_path else None
    steps = ", ".join(f"{b / a:.3g}×" for a, b in zip(rates, rates[1:], strict=False))
    strategy = (f"Search strategy: {len(rates)} learning rates from {rates[0]:g} to {rates[-1]:g} (successive "
                f"factors {steps}), every other setting fixed, each run to the same token budget with its cosine "
                "schedule ending at the last step.")
    if selection:
        strategy += f" The choice rule: {selection.get('rule', MISSING)}. {selection.get('why', '')}"
    s.say(strategy)
    if selection and selection.get("rounds"):
        s.say("After the grid the sweep searched round by round for two brackets, the optimum (the best stable "
              "rate with tried neighbours close on both sides) and the edge of stability, sharing one bound of "
              "extra runs; what each round tried and why:")
        s.bullets([f"round {r['round']}: " + (", ".join(f"{v:g} ({p})" for v, p in zip(r["next"], r["purposes"],
                                                                                   strict=True)) or "nothing")
                   + f" — {r['reason']}" for r in selection["rounds"]])
    s.table([{"lr_max": f"{lr[k]:g}", "outcome": OUTCOMES.get(summaries[k].status, summaries[k].status),
              "final val loss": final_loss(summaries[k]),
              "val loss at half of training": num(_mid_training_val(runs[k])), "steps": count(summaries[k].steps)}
             for k in order])
    ref = s.reference
    s.say("Reference: " + (ref.cell("lr_sweep_best_lr") if ref.demo else
                           "best lr " + ref.cell("lr_sweep_best_lr", lambda v: f"{v:g}") + ", best validation loss "
                           + ref.cell("lr_sweep_best_val_loss", lambda v: f"{v:.4g}") + "; "
                           + ref.cell("lr_sweep_high_rates")) + ".")
    best = best_run(summaries)
    if best is None:
        s.say("No rate finished without diverging: the grid starts too high.")
        return
    mids = {lr[k]: loss for k in order if finished(summaries[k]) and (loss := _mid_training_val(runs[k])) is not None}
    text = f"(a) The best rate is {lr[best]:g}, final validation loss {num(summaries[best].final_val_loss)}."
    if len(mids) > 1:
        fastest = min(mids, key=mids.get)
        text += (f" Half-way through training the loss was lowest at lr {fastest:g} ({num(mids[fastest])}): "
                 + ("every larger stable rate converged faster, up to the largest one tried." if fastest == max(mids)
                    else "up to it a larger rate converged faster; above it the bigger steps no longer helped."))
    s.say(text)
    _neighbours(s, inputs, summaries, lr, best, selection)
    _target_sentence(s, inputs, summaries[best])
    s.figure("lr_sweep")
    _edge(s, summaries, lr, best, selection)
    s.read_from(*(f"{runs[k]}/summary.json" for k in order), *([selection_path] if selection_path else []))


def _neighbours(s: Section, inputs: ReportInputs, summaries: dict, lr: dict, best: str, selection: dict | None
                ) -> None:
    """Whether the optimum is bracketed, and how far its nearest tried neighbours ended from it against the noise."""
    optimum = (selection or {}).get("optimum")
    noise, how = noise_estimate(inputs)
    text = f"Optimum: {Optimum(**optimum).describe()}." if optimum else ""
    for side, pick in (("below", max), ("above", min)):
        others = [k for k in summaries if (lr[k] < lr[best] if side == "below" else lr[k] > lr[best])]
        if not others:
            continue
        k = pick(others, key=lr.get)
        if finished(summaries[k]):
            gap = summaries[k].final_val_loss - summaries[best].final_val_loss
            text += f" The nearest rate {side}, {lr[k]:g}, ended {num(gap, 3)} nats higher ({noise.judge(gap)})."
        else:
            text += f" The nearest rate {side}, {lr[k]:g}, was {OUTCOMES.get(summaries[k].status, 'not stable')}."
    if text:
        s.say(text.strip(), how)


def _target_sentence(s: Section, inputs: ReportInputs, best: Any) -> None:
    """The deliverable's 'a model with validation loss ≤ 1.45', for TinyStories on course data."""
    datasets = inputs.datasets_of("lr_sweep")
    if datasets != ["tinystories"]:
        return
    if inputs.synthetic(datasets):
        s.say("The handout's target (TinyStories validation loss ≤ 1.45) does not apply to the demo's synthetic "
              "text.")
        return
    main = [inputs.summary(d) for _, e, _, d in inputs.members("main")
            if inputs.experiment_datasets.get(e) == "tinystories"]
    candidates = [best, *main]
    low = min((sm.final_val_loss for sm in candidates if finished(sm)), default=None)
    reached = low is not None and low <= TINYSTORIES_TARGET
    s.say(f"The best TinyStories model here reaches {num(low)}: {'below' if reached else 'above'} the handout's "
          f"target of {TINYSTORIES_TARGET}." + ("" if reached else " It does not meet the target; the runs are too "
                                                "short or the rate grid too coarse to get there."))


def _edge(s: Section, summaries: dict, lr: dict, best: str, selection: dict | None) -> None:
    any_run = next(iter(summaries.values()))
    s.say(f"(b) Divergence rule: {divergence_rule(any_run)}")
    edge = (selection or {}).get("edge")
    stable, diverged = (edge["largest_stable"], edge["smallest_not_stable"]) if edge else stability_edge(summaries)
    if diverged is None:
        s.say(f"No rate diverged: the edge of stability lies above the largest rate tried ({stable:g}), so it is "
              "not located; the sweep must go higher.")
    elif stable is None:
        s.say(f"Every rate up to {diverged:g} was unstable or diverged: the edge lies below the grid.")
    else:
        factor = diverged / stable
        target = (edge or {}).get("target_factor")
        located = factor <= (target or 4)
        s.say(f"The edge of stability lies between {stable:g} (largest stable) and {diverged:g} (smallest not "
              "stable), "
              f"a bracket of {times(factor)}" + (f" (target ≤ {times(target)})" if target else "") + "."
              + ("" if located else " That bracket is too wide to locate the edge: the sweep needs rates between "
                                    "them."))
        gap = diverged / lr[best]
        if lr[best] == stable and located:
            s.say(f"The best rate is the largest stable one, {times(gap)} below the smallest unstable rate: it "
                  "sits at the edge of stability, as the folklore the handout quotes says.")
        elif lr[best] == stable:
            s.say("The best rate is the largest stable rate tried; whether it is near the edge is open until the "
                  "bracket is refined.")
        elif gap <= 4:
            s.say(f"The best rate is {times(gap)} below the smallest unstable rate, close to the edge; the stable "
                  f"rates above it (up to {stable:g}) train, but lose some of the gain to instability.")
        else:
            s.say(f"The best rate is {times(stable / lr[best])} below the largest stable rate and {times(gap)} below "
                  "the smallest one that is not stable. That contradicts the folklore the handout quotes, that the "
                  "best rate sits at the edge: the stable rates above the best trained without a spike but ended "
                  "higher, so with this token budget the larger steps cost more than they gain.")
    s.figure("lr_edge")


def batch_size_experiment(s: Section, inputs: ReportInputs) -> None:
    s.data_note(inputs.datasets_of("batch_size"))
    summaries = inputs.summaries("batch_size")
    size = {k: config_value(sm, "train.batch_size") for k, sm in summaries.items()}
    order = sorted(summaries, key=size.get)
    tuning_files = {label: path for label, experiment, variant, _ in inputs.members("batch_size")
                    if (path := inputs.tuning(experiment, variant)) is not None}
    tunings = {label: read_selection(path) for label, path in tuning_files.items()}
    s.table([{"batch size": size[k], "lr_max": f"{config_value(summaries[k], 'optim.lr_max'):g}"
              + ("" if k in tunings else selected_note(summaries[k], "optim.lr_max")),
              **({"rates tried (final val loss)": _tried(tunings.get(k))} if tunings else {}),
              "outcome": OUTCOMES.get(summaries[k].status, summaries[k].status),
              "final val loss": final_loss(summaries[k]), "steps": count(summaries[k].steps),
              "tokens": count(summaries[k].tokens), "tokens/s": count(summaries[k].tokens_per_s),
              "wall time": duration(summaries[k].wall_time_s)} for k in order])
    best = best_run(summaries)
    if best is None:
        s.say("Every batch size diverged.")
        return
    speeds = {k: _throughputs(inputs.runs("batch_size")[k]) for k in order}
    lrs = {config_value(summaries[k], "optim.lr_max") for k in order}
    tuned = all((summaries[k].selected or {}).get("optim.lr_max") for k in order)
    noise, how = noise_estimate(inputs)
    first, last = order[0], order[-1]
    text = (f"Every batch size trained on the same number of tokens, so a larger batch takes fewer optimizer steps. "
            f"The lowest final validation loss came from batch {size[best]} "
            f"({num(summaries[best].final_val_loss)}). " + _throughput_note(speeds, size, first, last))
    text += (_tuning_note(tunings, size) if tunings else "Each batch size used its own tuned learning rate. "
             if tuned else
             f"All batch sizes used lr {lrs.pop():g}, the same for every batch size rather than re-tuned, so the "
             "larger batches, with fewer steps, are held back unless their rate is raised. " if len(lrs) == 1 else
             "The learning rates differ between batch sizes. ")
    if best != last and finished(summaries[last]):
        gap = summaries[last].final_val_loss - summaries[best].final_val_loss
        text += (f"The largest batch ended {num(gap, 3)} nats above the best ({noise.judge(gap)}): at equal tokens "
                 f"it took {times(summaries[best].steps / max(summaries[last].steps, 1))} fewer steps. ")
    if best != first and finished(summaries[first]):
        gap = summaries[first].final_val_loss - summaries[best].final_val_loss
        text += f"The smallest batch ended {num(gap, 3)} nats above the best ({noise.judge(gap)}). "
    s.say(text, how)
    s.figure("batch_size")
    s.read_from(*(f"{inputs.runs('batch_size')[k]}/summary.json" for k in order), *tuning_files.values())


def _throughputs(run_dir: str) -> list[float]:
    """The tokens/s of each metrics line after the first two (start-up, compilation): repeated measurements of one
    run's throughput."""
    frame = load_metrics(run_dir)
    return [float(v) for v in frame.tokens_per_s.iloc[2:] if math.isfinite(v)] if len(frame) else []


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, median, q3 = (float(v) for v in pd.Series(values).quantile([0.25, 0.5, 0.75]))
    return q1, median, q3


def _throughput_note(speeds: dict[str, list[float]], size: dict[str, int], first: str, last: str) -> str:
    """How tokens/s moved from the smallest to the largest batch, from each run's repeated per-line measurements:
    a change is claimed only when their interquartile ranges do not overlap (at least three lines each)."""
    if min(len(speeds[first]), len(speeds[last])) < 3:
        return "Throughput is not compared: the runs logged too few lines to measure it repeatedly. "
    (lo_a, med_a, hi_a), (lo_b, med_b, hi_b) = _quartiles(speeds[first]), _quartiles(speeds[last])
    ratio = med_b / max(med_a, 1e-9)
    span = (f"from a median of {count(med_a)} tokens/s at batch {size[first]} to {count(med_b)} at batch "
            f"{size[last]} ({times(ratio)}; interquartile ranges over the metrics lines {count(lo_a)}–{count(hi_a)} "
            f"and {count(lo_b)}–{count(hi_b)})")
    if lo_b <= hi_a and lo_a <= hi_b:
        return f"Throughput moved {span}: the ranges overlap, so the change is not resolved. "
    if ratio > 1:
        return f"Throughput rose {span}: bigger matmuls use the device better. "
    return (f"Throughput fell {span}, against the usual gain from bigger matmuls: on a shared or small device "
            "other work and memory traffic can outweigh it; treat this as a property of this machine. ")


def _tried(tuning: Selection | None) -> str:
    """`0.0025 (1.93), 0.005 (1.24), **0.01** (0.972)`: a tuned batch size's rates, the chosen one in bold."""
    if tuning is None:
        return MISSING
    cells = []
    for c in sorted(tuning.candidates, key=lambda c: c.value):
        value = f"**{c.value:g}**" if c.variant == tuning.variant else f"{c.value:g}"
        cells.append(f"{value} ({num(c.final_val_loss, 3) if c.stable else c.status})")
    return ", ".join(cells)


def _tuning_note(tunings: dict[str, Selection], size: dict[str, int]) -> str:
    """How each batch size's rate was tuned, and which choices sit at an end of the range tried."""
    tried = {len(t.candidates) for t in tunings.values()}
    text = (f"Each batch size chose its learning rate from its own small sweep ({'/'.join(map(str, sorted(tried)))} "
            "rates around the lr sweep's best, scaled with the batch size; chosen rate in bold). ")
    interior = sorted(size[k] for k, t in tunings.items() if k in size
                      and min(c.value for c in t.candidates) < t.value < max(c.value for c in t.candidates))
    if interior:
        text += (f"For batch size{'s' if len(interior) > 1 else ''} {', '.join(map(str, interior))} the chosen rate "
                 "has tried rates on both sides: an interior optimum. ")
    extended = sum(len(p.next) for t in tunings.values() for p in t.rounds)
    if extended:
        text += (f"{extended} rate{'s' if extended > 1 else ''} beyond the first three were added where a choice sat "
                 "at an end of its range. ")
    for end, word in ((max, "largest"), (min, "smallest")):
        at_end = sorted((k for k, t in tunings.items() if k in size
                         and t.value == end(c.value for c in t.candidates)), key=size.get)
        if at_end:
            sizes = ", ".join(str(size[k]) for k in at_end)
            text += (f"For batch size{'s' if len(at_end) > 1 else ''} {sizes} the chosen rate is "
                     f"the {word} one tried, so the best rate may lie beyond the range: those batch sizes may be "
                     "under-tuned, and the comparison between batch sizes is provisional")
            why = [f"batch {size[k]}: {tunings[k].rounds[-1].reason}" for k in at_end if tunings[k].rounds]
            text += (f" (why the range stopped there: {'; '.join(why)}). " if why else
                     " (its range was not extended: see tune_extend). ")
    return text


def generate(s: Section, inputs: ReportInputs) -> None:
    s.data_note(inputs.datasets_of("samples"))
    for key, path in inputs.files_under("samples").items():
        experiment, _, variant = key.partition("/")
        run_dir = inputs.experiments.get(experiment, {}).get(variant)
        summary = inputs.summary(run_dir) if run_dir else None
        loss = summary.final_val_loss if summary is not None and finished(summary) else None
        s.say(f"**`{key}`** ({outcome(summary) if summary else 'model'}"
              + (f", perplexity {num(math.exp(loss), 3)}" if loss is not None else "") + "):")
        s.say(("\n" + path.read_text(encoding="utf-8")).replace("\n#", "\n####").strip())
        s.read_from(path)
    grid_path = inputs.file("generation_grid")
    grid = pd.read_csv(grid_path, keep_default_na=False) if grid_path else None
    _fluency(s, inputs, grid)
    if grid is None:
        return
    summary = grid_summary(grid)
    s.say("Two decoding factors, measured: every (temperature, top-p) setting below sampled the same prompts with "
          f"the same seeds from `{inputs.relative(grid.model.iloc[0])}`. Proxies per setting (means): "
          "distinct-n = unique word n-grams / all n-grams (higher is more varied), repeated 4-grams = share of "
          "4-grams already seen earlier in the same sample (loops), and how often the model ended the text with "
          "<|endoftext|> itself.")
    s.table([{"temperature": f"{r.temperature:g}", "top-p": f"{r.top_p:g}", "samples": r.samples,
              "new tokens": num(r.new_tokens, 3), "stopped at <|endoftext|>": percent(r.stopped_at_eos),
              "distinct-1": num(r.distinct_1, 3), "distinct-2": num(r.distinct_2, 3),
              "repeated 4-grams": percent(r.repetition_4), "ids without a token": count(r.unknown_tokens)}
             for r in summary.itertuples()])
    _grid_findings(s, summary)
    if summary.samples.min() < 8:
        s.say(f"With {summary.samples.min()} samples per setting these proxies are noisy: read the trend across "
              "settings, not single cells.")
    unknown = summary[summary.unknown_tokens > 0]
    if len(unknown):
        s.say(f"At temperature {unknown.temperature.min():g} and above, the model sampled ids its tokenizer does "
              "not have (shown as �): the model's vocabulary is larger than the merges BPE found on this corpus, and "
              "their never-trained logits get real probability once the distribution is flattened.")
    cold = grid[(grid.temperature == grid.temperature.min()) & (grid.top_p == grid.top_p.min())].iloc[0]
    hot = grid[(grid.temperature == grid.temperature.max()) & (grid.top_p == grid.top_p.max())].iloc[0]
    for name, row in (("most conservative", cold), ("most random", hot)):
        s.say(f"The {name} setting (temperature {row.temperature:g}, top-p {row.top_p:g}), first prompt:")
        s.say("```text\n" + row.prompt + str(row.completion)[:600] + ("…" if len(str(row.completion)) > 600 else "")
              + "\n```")
    s.figure("generation_grid")
    s.read_from(grid_path)


def _fluency(s: Section, inputs: ReportInputs, grid: pd.DataFrame | None) -> None:
    """A comment on fluency from what can be measured: the TinyStories model's loss against the handout's mark for
    mostly fluent text, and how often samples end on their own."""
    stories = [(f"{e}/{v}", inputs.summary(d)) for _, e, v, d in inputs.members("samples")
               if inputs.experiment_datasets.get(e) == "tinystories" and finished(inputs.summary(d))]
    ended = f" Over the whole grid, {percent(grid.stopped_at_eos.mean())} of the samples ended with <|endoftext|> " \
            "on their own (a finished story) rather than at the token limit." if grid is not None else ""
    if inputs.synthetic(inputs.datasets_of("samples")) is not False:
        s.say("Fluency: the demo's corpus is generated from a small set of sentence templates, which even a tiny "
              "model imitates within seconds, so grammatical sentences here say little; what to judge is whether "
              "they hold together as a story. The handout's fluency mark (TinyStories validation loss ≤ 1.45) does "
              "not apply to synthetic text." + ended)
        return
    for label, sm in stories:
        fluent = sm.final_val_loss <= TINYSTORIES_TARGET
        reads = "mostly fluent" if fluent else "English-like but often incoherent"
        s.say(f"Fluency: `{label}` reached a validation loss of {num(sm.final_val_loss)}, "
              f"{'below' if fluent else 'above'} the {TINYSTORIES_TARGET} at which the handout finds TinyStories "
              f"text mostly fluent, so its samples should read as {reads} short stories; judge them above." + ended)


def _grid_findings(s: Section, summary: pd.DataFrame) -> None:
    """Sentences on how temperature and top-p moved the proxies (generated from the grid's means)."""
    by_temp = summary.groupby("temperature")[["distinct_2", "repetition_4"]].mean()
    by_top_p = summary.groupby("top_p")[["distinct_2", "repetition_4"]].mean()
    low_t, high_t = by_temp.index.min(), by_temp.index.max()
    low_p, high_p = by_top_p.index.min(), by_top_p.index.max()

    def change(name: str, table: pd.DataFrame, low: float, high: float) -> str:
        d2, rep = table.distinct_2, table.repetition_4
        moved = (f"distinct-2 went from {num(d2[low], 3)} to {num(d2[high], 3)} and repeated 4-grams from "
                 f"{percent(rep[low])} to {percent(rep[high])}")
        if d2[high] == d2[low] and rep[high] == rep[low]:
            return f"{name}: from {low:g} to {high:g} the proxies did not move ({moved})."
        varied = "more" if d2[high] > d2[low] else "less" if d2[high] < d2[low] else "equally"
        loops = "more" if rep[high] > rep[low] else "less" if rep[high] < rep[low] else "equally"
        return f"{name}: from {low:g} to {high:g}, {moved}: {varied} varied and {loops} repetitive text."

    s.say(change("Temperature", by_temp, low_t, high_t) + " A higher temperature flattens the next-token "
          "distribution: too high and the text drifts into rare, incoherent tokens; too low and it falls into "
          "loops of the likeliest phrase.")
    if low_p != high_p:
        s.say(change("Top-p", by_top_p, low_p, high_p) + " A smaller nucleus cuts the unlikely tail, which keeps "
              "the text on topic at the price of variety.")
