"""Handout §7.2 `generate`: the sample sheets, each model's samples judged by measured proxies against held-out text
of its corpus (cs336lm.problems.generation_quality), and the temperature × top-p grid, answered from samples/*.md,
samples/*.json (each sample's own loss under the model), the validation text and samples/generation_grid.csv."""

from __future__ import annotations

import json
import math

import pandas as pd

from cs336lm.problems.generation_quality import (
    CORPUS_BYTES,
    INCOHERENCE_MARGIN,
    compare_with_corpus,
    grid_summary,
    incoherence_signs,
)
from cs336lm.reporting.document import MISSING, Section, count, num, percent
from cs336lm.reporting.inputs import ReportInputs
from cs336lm.reporting.runs import finished, outcome

PROXIES = ("How the samples are judged (our method): each model's samples against passages of held-out validation "
           "text of its own corpus with the same number of words. Distinct-2 = unique word pairs / all word pairs "
           "(higher is more varied); repeated 4-grams = share of word 4-grams already seen earlier in the same text "
           "(loops); unseen word pairs = share of word pairs that never occur in the first half of the validation "
           "text read (the passages come from its second half, so real text gets the same test); loss = mean nats "
           "per token under the model itself, for its samples and for validation text (the run's final validation "
           f"loss). A sample counts as incoherent when its unseen word pairs or its repeated 4-grams exceed those of "
           f"the corpus passages by more than {INCOHERENCE_MARGIN * 100:.0f} percentage points.")


def generate(s: Section, inputs: ReportInputs) -> None:
    s.data_note(inputs.datasets_of("samples"))
    s.say("The handout asks for a \"Text dump of at least 256 tokens of text (or until the first <|endoftext|> "
          "token), and a brief comment on the fluency of this output and at least two factors which affect how good "
          "or bad this output is.\"", PROXIES)
    for key, path in inputs.files_under("samples").items():
        experiment, _, variant = key.partition("/")
        summary = _summary(inputs, experiment, variant)
        loss = summary.final_val_loss if summary is not None and finished(summary) else None
        s.say(f"**`{key}`** ({outcome(summary) if summary else 'model'}"
              + (f", perplexity {num(math.exp(loss), 3)}" if loss is not None else "") + "):")
        s.say(("\n" + path.read_text(encoding="utf-8")).replace("\n#", "\n####").strip())
        judge_samples(s, inputs, experiment, variant)
        s.read_from(path)
    grid_path = inputs.file("generation_grid")
    if grid_path is None:
        return
    grid = pd.read_csv(grid_path, keep_default_na=False)
    summary = grid_summary(grid)
    unseen = _unseen_by_setting(inputs, grid)
    s.say("Two decoding factors, measured: every (temperature, top-p) setting below sampled the same prompts with "
          f"the same seeds from `{inputs.relative(grid.model.iloc[0])}`; the proxies as above (means per setting), "
          "and how often the model ended the text with <|endoftext|> itself."
          + (f" Held-out `{unseen[2]}` text of the same lengths has {percent(unseen[1])} unseen word pairs."
             if unseen else ""))
    s.table([{"temperature": f"{r.temperature:g}", "top-p": f"{r.top_p:g}", "samples": r.samples,
              "new tokens": num(r.new_tokens, 3), "stopped at <|endoftext|>": percent(r.stopped_at_eos),
              "distinct-1": num(r.distinct_1, 3), "distinct-2": num(r.distinct_2, 3),
              "repeated 4-grams": percent(r.repetition_4),
              "unseen word pairs": percent(unseen[0].get((r.temperature, r.top_p))) if unseen else MISSING,
              "loss under the model": num(r.sample_loss, 3), "ids without a token": count(r.unknown_tokens)}
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


def _corpus_text(path) -> str:
    """The first CORPUS_BYTES of a text file (a character cut at the end is dropped)."""
    with open(path, "rb") as f:
        return f.read(CORPUS_BYTES).decode("utf-8", errors="ignore")


def _unseen_by_setting(inputs: ReportInputs, grid: pd.DataFrame) -> tuple[dict, float | None, str] | None:
    """({(temperature, top_p): unseen word pairs of its samples}, the held-out corpus passages' mean, dataset) for
    the grid's model (the first run of report.samples), or None without its corpus text."""
    experiments = [e for e in inputs.roles.get("samples", []) if e in inputs.experiment_datasets]
    dataset = inputs.experiment_datasets[experiments[0]] if experiments else None
    path = inputs.file(f"valid_text/{dataset}") if dataset else None
    if path is None:
        return None
    text = _corpus_text(path)
    by_setting = {key: compare_with_corpus([str(c) for c in rows.completion], text)
                  for key, rows in grid.groupby(["temperature", "top_p"])}
    corpus = compare_with_corpus([str(c) for c in grid.completion], text)["corpus"]["unseen_2"]
    return {key: m["samples"]["unseen_2"] for key, m in by_setting.items()}, corpus, dataset


def _summary(inputs: ReportInputs, experiment: str, variant: str):
    run_dir = inputs.experiments.get(experiment, {}).get(variant)
    return inputs.summary(run_dir) if run_dir else None


def judge_samples(s: Section, inputs: ReportInputs, experiment: str, variant: str) -> list[str] | None:
    """The samples of one run against held-out text of its corpus: a table of the proxies and a verdict. Returns
    the signs of incoherence found (empty: none), or None when the scores or the corpus text are missing."""
    scores_path = inputs.file(f"sample_scores/{experiment}/{variant}")
    dataset = inputs.experiment_datasets.get(experiment)
    text_path = inputs.file(f"valid_text/{dataset}") if dataset else None
    if scores_path is None or text_path is None:
        s.say("The samples' proxies were not measured in this configuration (no scores file or validation text).")
        return None
    scores = json.loads(scores_path.read_text(encoding="utf-8"))
    samples = [x["completion"] for x in scores["samples"]]
    means = compare_with_corpus(samples, _corpus_text(text_path))
    losses = [x["loss"] for x in scores["samples"] if x.get("loss") is not None]
    sample_loss = sum(losses) / len(losses) if losses else None
    summary = _summary(inputs, experiment, variant)
    val_loss = summary.final_val_loss if summary is not None and finished(summary) else None
    label = f"held-out `{dataset}` text, same lengths"
    s.table([{"text": text, "words": num(m["words"], 3), "distinct-2": num(m["distinct_2"], 3),
              "repeated 4-grams": percent(m["repetition_4"]), "unseen word pairs": percent(m["unseen_2"]),
              "loss under the model": num(loss, 3) if loss is not None else MISSING}
             for text, m, loss in (("these samples", means["samples"], sample_loss),
                                   (label, means["corpus"], val_loss))])
    if means["samples"]["unseen_2"] is None or means["corpus"]["unseen_2"] is None:
        s.say("The samples (or the corpus text) are too short to measure word pairs: no verdict.")
        return None
    signs = incoherence_signs(means["samples"], means["corpus"])
    setting = f"temperature {scores['temperature']:g}, top-p {scores['top_p']:g}"
    if signs:
        s.say(f"Verdict on fluency: the samples of `{experiment}/{variant}` ({setting}) are **incoherent**: "
              + "; ".join(signs) + ".")
    else:
        s.say(f"Verdict on fluency: on these proxies the samples of `{experiment}/{variant}` ({setting}) are as "
              f"coherent locally as held-out `{dataset}` text (within {INCOHERENCE_MARGIN * 100:.0f} percentage "
              "points on unseen word pairs and repeated 4-grams). Whether a story holds together beyond a few words "
              "the proxies cannot tell: read the samples above.")
    if sample_loss is not None and val_loss is not None:
        likelier = "more" if sample_loss < val_loss else "less"
        s.say(f"Under the model its own samples cost {num(sample_loss, 3)} nats per token against {num(val_loss, 3)} "
              f"on validation text: the model finds them {likelier} likely than real text"
              + (f" (sampling at {setting} favours its likeliest tokens)." if sample_loss < val_loss else "."))
    s.read_from(scores_path)
    return signs


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

    s.say(change("Temperature", by_temp, low_t, high_t) + " Why (our reasoning): a higher temperature flattens the "
          "next-token distribution, drawing rarer tokens; a lower one concentrates it on the likeliest, which "
          "favours repeating phrases.")
    if low_p != high_p:
        s.say(change("Top-p", by_top_p, low_p, high_p) + " Why (our reasoning): a smaller nucleus cuts the unlikely "
              "tail of the distribution, trading variety for likelier tokens.")
