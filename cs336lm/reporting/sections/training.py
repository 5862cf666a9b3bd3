"""Handout §7.1–§7.2: the experiment log (`experiment_log`), the learning-rate sweep and its edge of stability
(`learning_rate`) and batch sizes (`batch_size_experiment`), answered from the runs' summary.json and metrics.jsonl
and the sweep's selection file (generation is in sections/generation.py)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from cs336lm.experiments.selection import Optimum, Selection, read_selection
from cs336lm.reporting.datasets import read_json
from cs336lm.reporting.document import MISSING, Section, count, duration, num, percent, times
from cs336lm.reporting.inputs import ReportInputs
from cs336lm.reporting.provenance import COURSE_TOKENS
from cs336lm.reporting.runs import (
    best_run,
    divergence_rule,
    finished,
    load_metrics,
    logged_runs,
    runs_table,
    stability_edge,
)
from cs336lm.reporting.sections.common import final_loss, noise_estimate, selected_note
from cs336lm.reporting.targets import TINYSTORIES_TARGET
from cs336lm.training.divergence import OUTCOMES


def experiment_log(s: Section, inputs: ReportInputs) -> None:
    s.say("Every run logs one JSON line per log step to `runs/<experiment>/<variant>/metrics.jsonl` (step, tokens, "
          "wall-clock seconds, learning rate, training loss, gradient norm, throughput, and the validation loss on "
          "evaluation steps) and ends with `summary.json` (status, final and best validation loss, tokens, wall "
          "time, parameters, model FLOPs utilization where the device's peak is known, the resolved config, code "
          "version and device). Every curve and number of this report is read from those files.")
    selections = inputs.selections()
    table = runs_table(inputs.experiments, selections)
    measured = table.mfu.notna()
    if not measured.all():
        devices = ", ".join(sorted({d or "unknown" for d in table.device[~measured]}))
        s.say(("No run" if not measured.any() else f"{int((~measured).sum())} of {len(table)} runs")
              + f" recorded an MFU (`mfu` is null in summary.json): the peak FLOP/s of {devices} is not known, so "
              "utilization is not measured there" + (", and the MFU column shows the others." if measured.any()
                                                     else "."))
    s.say(f"The log below has one row per trained run directory ({len(table)} runs, also `tables/runs.csv`): a run "
          "that several names share (an identical config trained once, or the run a sweep chose) is listed once "
          "under the name it trained as, with the other names beside it, and every tuning run is listed, the ones "
          "its sweep did not choose marked \"lost\".")
    s.table([{"run": f"{r.experiment}/{r.variant}", "also shown as": r.shown_as.replace("; ", ", ") or "—",
              "tuning": r.tuning or "—",
              "status": r.status + (f" ({r.stopped_early})" if r.stopped_early and r.stopped_early != r.status
                                    else ""),
              "final val loss": num(r.final_val_loss), "best val loss": num(r.best_val_loss), "steps": count(r.steps),
              "tokens": count(r.tokens), "wall time": duration(r.wall_time_s), "tokens/s": count(r.tokens_per_s),
              **({"MFU": percent(r.mfu)} if measured.any() else {}), "device": r.device or MISSING,
              **({"time asked / used": _asked_used(r)} if table.requested_minutes.notna().any() else {})}
             for r in table.itertuples()])
    _narrative(s, inputs, selections)
    _final_eval_note(s, inputs)
    _request_note(s, table)
    s.read_from("runs/*/*/summary.json", "runs/*/*/metrics.jsonl",
                *(["runs/*/*/request.json"] if table.requested_minutes.notna().any() else []),
                *(["selections/**/*.json"] if selections else []))


def _narrative(s: Section, inputs: ReportInputs, selections: list[Selection]) -> None:
    """What ran in what order: the runs that needed no sweep's choice first, then each selection (from its file)
    and the runs that waited for the value it chose."""
    def file_of(sel: Selection) -> str:
        return f"selections/{sel.sweep}.json"

    takers: dict[str, list[str]] = {}
    free = []
    for entry in logged_runs(inputs.experiments, selections):
        name = f"`{entry.experiment}/{entry.variant}`"
        sources = {str(v.source) for v in (inputs.summary(entry.run_dir).selected or {}).values()}
        for sel in selections:
            if any(src.endswith(file_of(sel)) for src in sources):
                takers.setdefault(sel.sweep, []).append(name)
        if not sources:
            free.append(name)
    steps, rules = [], set()
    if free:
        steps.append(f"Runs whose config needs no sweep's choice came first: {_listed(free)}.")
    for sel in selections:
        tried = ", ".join(f"{c.value:g}" for c in sorted(sel.candidates, key=lambda c: c.value))
        text = (f"`{file_of(sel)}` compared {len(sel.candidates)} runs of {sel.key} ({tried}) and chose "
                f"{sel.value:g} (`{sel.variant}`, final validation loss {num(sel.final_val_loss)})"
                + ("." if sel.rule in rules else f" by its rule: {sel.rule}."))
        rules.add(sel.rule)
        if sel.sweep in takers:
            text += f" Then the runs that take this value trained: {_listed(takers[sel.sweep])}."
        steps.append(text)
    if not selections:
        steps.append("No sweep chose a value in this configuration: every run's config is fixed in advance.")
    s.say("**Order of work.** " + " ".join(steps))


def _listed(names: list[str], limit: int = 12) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _final_eval_note(s: Section, inputs: ReportInputs) -> None:
    """What every final validation loss was measured on: the whole split, or the configured number of tokens."""
    scopes = {}
    for summary in inputs.all_summaries().values():
        if summary.final_val_tokens:
            whole = summary.run_config.train.final_eval_tokens == 0
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


def _mid_training_val(run_dir: str, planned_steps: int) -> tuple[float, float] | None:
    """(validation loss, share of the planned steps) at the evaluation closest to half of the run's planned steps
    (how fast it converged); the share says where that evaluation actually was."""
    frame = load_metrics(run_dir)
    evals = frame.dropna(subset=["val_loss"]) if len(frame) else frame
    if not len(evals) or not planned_steps:
        return None
    row = evals.iloc[(evals.step - planned_steps / 2).abs().argmin()]
    return float(row.val_loss), float(row.step) / planned_steps


def _status(summary: Any) -> str:
    """The run's status, flagged when it finished no lower than predicting token frequencies on held-out text
    (its final validation loss at or above the unigram entropy of its training tokens)."""
    status = OUTCOMES.get(summary.status, summary.status)
    if _unlearned(summary):
        return f"{status}, but its validation loss is not below the unigram entropy {num(summary.no_learning_loss)}"
    return status


def _unlearned(summary: Any) -> bool:
    """Finished, but no lower on held-out text than predicting token frequencies."""
    return finished(summary) and summary.final_val_loss >= summary.no_learning_loss


def learning_rate(s: Section, inputs: ReportInputs) -> None:
    s.data_note(inputs.datasets_of("lr_sweep"), inputs.summaries("lr_sweep").values())
    runs, summaries = inputs.runs("lr_sweep"), inputs.summaries("lr_sweep")
    lr = {label: sm.config_value("optim.lr_max") for label, sm in summaries.items()}
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
    mids = {k: mid for k in order if (mid := _mid_training_val(runs[k], summaries[k].num_iterations)) is not None}
    s.table([{"lr_max": f"{lr[k]:g}", "outcome": _status(summaries[k]),
              "final val loss": final_loss(summaries[k]),
              "val loss near half of training": f"{num(mids[k][0])} (at {percent(mids[k][1])})" if k in mids
              else MISSING, "steps": count(summaries[k].steps)}
             for k in order])
    ref = s.reference
    s.say("Reference: " + (ref.cell("lr_sweep_best_lr") if not ref.comparable else
                           "best lr " + ref.cell("lr_sweep_best_lr", lambda v: f"{v:g}") + ", best validation loss "
                           + ref.cell("lr_sweep_best_val_loss", lambda v: f"{v:.4g}") + "; "
                           + ref.cell("lr_sweep_high_rates")) + ".")
    best = best_run(summaries)
    if best is None:
        s.say("No rate finished without diverging: the grid starts too high.")
        return
    text = f"(a) The best rate is {lr[best]:g}, final validation loss {num(summaries[best].final_val_loss)}."
    s.say(text + _convergence(summaries, lr, mids))
    _neighbours(s, inputs, summaries, lr, best, selection)
    _target_sentence(s, inputs, summaries[best])
    s.figure("lr_sweep")
    _edge(s, summaries, lr, best, selection)
    s.read_from(*(f"{runs[k]}/summary.json" for k in order), *([selection_path] if selection_path else []))


def _convergence(summaries: dict, lr: dict, mids: dict[str, tuple[float, float]]) -> str:
    """Which stable rate had the lowest validation loss at the evaluation nearest half of training, saying at what
    share of the steps those evaluations were."""
    done = {lr[k]: mid for k, mid in mids.items() if finished(summaries[k])}
    if len(done) < 2:
        return ""
    fastest = min(done, key=lambda r: done[r][0])
    shares = [share for _, share in done.values()]
    where = (f"at {percent(shares[0])} of training" if max(shares) - min(shares) < 0.005 else
             f"at the evaluation nearest half of training ({percent(min(shares))} to {percent(max(shares))} of "
             "the steps)")
    below = [done[r][0] for r in sorted(done) if r <= fastest]
    monotone = all(a > b for a, b in zip(below, below[1:], strict=False))
    return (f" {where[0].upper()}{where[1:]}, the loss was lowest at lr {fastest:g} ({num(done[fastest][0])}): "
            + (("each larger stable rate converged faster, up to the largest one tried." if fastest == max(done)
                else "up to it each larger rate converged faster; above it the bigger steps no longer helped.")
               if monotone else "below it the loss did not fall steadily with the rate; "
               + ("it is the largest rate tried." if fastest == max(done) else "above it it rose again.")))


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
    """The deliverable's 'a model with validation loss ≤ TINYSTORIES_TARGET', for TinyStories on course data."""
    datasets = inputs.datasets_of("lr_sweep")
    if datasets != ["tinystories"]:
        return
    if inputs.synthetic(datasets):
        s.say(f"The handout's target (TinyStories validation loss ≤ {TINYSTORIES_TARGET}) does not apply to the "
              "demo's synthetic text.")
        return
    main = [inputs.summary(d) for _, e, _, d in inputs.members("main")
            if inputs.experiment_datasets.get(e) == "tinystories"]
    candidates = [best, *main]
    low = min((sm.final_val_loss for sm in candidates if finished(sm)), default=None)
    reached = low is not None and low <= TINYSTORIES_TARGET
    tokens = max((sm.tokens for sm in candidates if finished(sm)), default=0)
    short = ("" if reached or tokens >= COURSE_TOKENS else
             f" The longest of these runs trained {count(tokens)} tokens, {percent(tokens / COURSE_TOKENS)} of the "
             f"{count(COURSE_TOKENS)} the handout budgets for it.")
    s.say(f"The best TinyStories model here reaches {num(low)}: {'below' if reached else 'above'} the handout's "
          f"target of {TINYSTORIES_TARGET}" + ("." if reached else ", so it does not meet it.") + short)


def _edge(s: Section, summaries: dict, lr: dict, best: str, selection: dict | None) -> None:
    any_run = next(iter(summaries.values()))
    s.say(f"(b) Divergence rule: {divergence_rule(any_run)}")
    unlearned = [k for k in sorted(summaries, key=lr.get) if _unlearned(summaries[k])]
    if unlearned:
        s.say("The rule reads the training loss; on held-out text " + ", ".join(
            f"lr {lr[k]:g} ended at validation loss {num(summaries[k].final_val_loss)}, not below its unigram "
            f"entropy {num(summaries[k].no_learning_loss)}" for k in unlearned)
            + ": no better than predicting token frequencies, so it is not counted as a stable run that learned.")
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
                  "the smallest one that is not stable: here the best rate is not at the edge of stability, against "
                  "the folk wisdom the handout quotes (\"the best learning rate is 'at the edge of stability'\"). "
                  "The stable rates above it ended higher; this sweep does not show why.")
    s.figure("lr_edge")


def batch_size_experiment(s: Section, inputs: ReportInputs) -> None:
    s.data_note(inputs.datasets_of("batch_size"), inputs.summaries("batch_size").values())
    summaries = inputs.summaries("batch_size")
    size = {k: sm.config_value("train.batch_size") for k, sm in summaries.items()}
    order = sorted(summaries, key=size.get)
    tuning_files = {label: path for label, experiment, variant, _ in inputs.members("batch_size")
                    if (path := inputs.tuning(experiment, variant)) is not None}
    tunings = {label: read_selection(path) for label, path in tuning_files.items()}
    s.table([{"batch size": size[k], "lr_max": f"{summaries[k].config_value('optim.lr_max'):g}"
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
    lrs = {summaries[k].config_value("optim.lr_max") for k in order}
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
