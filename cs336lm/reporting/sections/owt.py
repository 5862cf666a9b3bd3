"""Handout §7.4–§7.5: TinyStories against OpenWebText (`main_experiment`), compared in bits per byte as well as
nats per token, and the leaderboard (`leaderboard`): the candidate modifications with their effect against the seed
noise, what was combined and why, and the run against the handout's baseline with the whole job's time."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cs336lm.experiments.combination import Combination, read_combination
from cs336lm.problems.generation_quality import distinct_n, repetition_rate
from cs336lm.reporting.datasets import bits_per_byte, bytes_per_token
from cs336lm.reporting.document import MISSING, Section, count, duration, num, percent, times
from cs336lm.reporting.inputs import ReportInputs
from cs336lm.reporting.runs import finished, outcome
from cs336lm.reporting.sections.common import final_loss, noise_estimate
from cs336lm.reporting.targets import LEADERBOARD_BASELINE, LEADERBOARD_H100_HOURS
from cs336lm.training.identity import differences


@dataclass(frozen=True)
class MainRun:
    """One main run with the numbers §7.4 compares: its loss per token and per byte, the unigram entropy of its
    training tokens (the loss of predicting token frequencies) in both units, and its samples' texts."""

    label: str
    dataset: str
    summary: Any
    bytes_per_token: float | None
    samples: list[str]

    @property
    def bpb(self) -> float | None:
        if not self.bytes_per_token or not finished(self.summary):
            return None
        return bits_per_byte(self.summary.final_val_loss, self.bytes_per_token)

    @property
    def unigram_bpb(self) -> float | None:
        return bits_per_byte(self.summary.no_learning_loss, self.bytes_per_token) if self.bytes_per_token else None

    @property
    def context_gain(self) -> float | None:
        """Share of the unigram entropy that the context removes: 1 - loss / unigram entropy."""
        return 1 - self.summary.final_val_loss / self.summary.no_learning_loss if finished(self.summary) else None

    def proxy(self, measure: Callable[[str], float | None]) -> float | None:
        """The mean of a proxy (cs336lm.problems.generation_quality) over the samples that have a value."""
        values = [v for text in self.samples if (v := measure(text)) is not None]
        return sum(values) / len(values) if values else None


def _sample_texts(path: Path | None) -> list[str]:
    """The texts of a sample sheet (cs336lm.problems.samples.write_samples: one ```text block per sample)."""
    return re.findall(r"```text\n(.*?)\n```", path.read_text(encoding="utf-8"), flags=re.S) if path else []


def _distinct_2(text: str) -> float | None:
    return distinct_n(text, 2)


def main_experiment(s: Section, inputs: ReportInputs) -> None:
    s.data_note(inputs.datasets_of("main"), inputs.summaries("main").values())
    runs = []
    for label, experiment, variant, run_dir in inputs.members("main"):
        summary = inputs.summary(run_dir)
        dataset = inputs.experiment_datasets.get(experiment, MISSING)
        text, tokens = inputs.file(f"valid_text/{dataset}"), inputs.file(f"valid_tokens/{dataset}")
        sheet = inputs.file(f"samples/{experiment}/{variant}")
        runs.append(MainRun(label, dataset, summary, bytes_per_token(text, tokens) if text and tokens else None,
                            _sample_texts(sheet)))
        s.read_from(f"{run_dir}/summary.json", *(p for p in (text, tokens, sheet) if p))
    s.table([{"run": r.label, "dataset": r.dataset, "vocabulary": count(r.summary.run_config.model.vocab_size),
              "parameters (non-embedding)": f"{count(r.summary.parameters.total)} "
                                            f"({count(r.summary.parameters.non_embedding)})",
              "iterations": count(r.summary.steps), "tokens trained": count(r.summary.tokens),
              "final val loss (nats/token)": final_loss(r.summary),
              "unigram entropy (nats/token)": num(r.summary.no_learning_loss),
              "validation bytes per token": num(r.bytes_per_token, 4), "bits per byte": num(r.bpb, 4),
              "unigram bits per byte": num(r.unigram_bpb, 4),
              "reference": s.reference.cell(f"main_val_loss/{r.dataset}", lambda v: f"{v:.4g}")} for r in runs])
    s.say("How to read these losses: nats per token depend on the tokenizer (a token of one vocabulary holds more "
          "or less text than a token of another), so the runs compare in bits per byte = loss ÷ ln 2 ÷ (bytes of "
          "validation text per validation token), the same quantity for any tokenizer. The unigram entropy of a "
          "run's training tokens is the loss of predicting token frequencies without context, a measure of how "
          "varied the text is token by token; what the model gets below it, it learned from the context.")
    s.figure("main_experiment")
    by_dataset = {r.dataset: r for r in runs}
    owt, stories = by_dataset.get("owt"), by_dataset.get("tinystories")
    if owt is None or stories is None:
        return
    _iterations(s, owt, stories)
    _compare_losses(s, inputs, owt, stories)
    _samples(s, inputs, owt, stories)


def _iterations(s: Section, owt: MainRun, stories: MainRun) -> None:
    a, b = owt.summary, stories.summary
    same_model = dataclasses.replace(a.run_config.model, vocab_size=b.run_config.model.vocab_size) == \
        b.run_config.model  # the vocabulary aside
    if a.steps == b.steps and same_model:
        extra = a.parameters.total - b.parameters.total
        s.say(f"As the handout asks, both runs train the same architecture for the same {count(a.steps)} "
              f"iterations of {count(a.run_config.train.batch_size)} × {count(a.run_config.model.context_length)}"
              " tokens" + (f"; only the vocabulary differs, so the OpenWebText model has {count(abs(extra))} "
                           f"{'more' if extra > 0 else 'fewer'} parameters, all in its embedding and output layers."
                           if extra else ", with the same parameter count."))
    else:
        s.say(f"These runs are not the handout's setup (the same architecture for the same iterations): "
              f"`{owt.label}` trained {count(a.steps)} iterations, `{stories.label}` {count(b.steps)}"
              + ("" if same_model else ", and their models differ beyond the vocabulary") + ".")


def _compare_losses(s: Section, inputs: ReportInputs, owt: MainRun, stories: MainRun) -> None:
    """Which run ends lower per byte, judged against the seed noise, with the measured parts of the gap."""
    if owt.bpb is None or stories.bpb is None:
        s.say("One of the runs has no finished validation loss, so the losses are not compared.")
        return
    noise, how = noise_estimate(inputs)
    # The noise floor is in nats per token; per byte it is largest for the tokenizer with the fewest bytes per
    # token, so that conversion is the cautious one.
    scale = 1 / (math.log(2) * min(owt.bytes_per_token, stories.bytes_per_token))
    gap = owt.bpb - stories.bpb
    judged = noise.judge(gap, unit="bits per byte", scale=scale)
    if noise.resolution is None or abs(gap) <= noise.resolution * scale:
        s.say(f"Per byte, `{owt.label}` ends at {num(owt.bpb, 3)} bits against {num(stories.bpb, 3)} for "
              f"`{stories.label}`, a difference of {judged}: these runs do not say which text is harder for this "
              "model.", how)
        return
    harder = gap > 0
    s.say(f"Per byte, `{owt.label}` ends at {num(owt.bpb, 3)} bits against {num(stories.bpb, 3)} for "
          f"`{stories.label}` ({judged}): OpenWebText is {'harder' if harder else 'easier'} for this model, by "
          f"{times(max(owt.bpb, stories.bpb) / min(owt.bpb, stories.bpb))}. " + " ".join(_why(owt, stories))
          + ("" if harder else " This runs against the handout's description of OpenWebText as \"much more "
             "realistic, complex, and varied\" text."), how)


def _why(owt: MainRun, stories: MainRun) -> list[str]:
    """The measured parts of the gap, each in the direction its numbers point: the text's token-level variety
    (unigram entropy per byte) and how much of it the context removes."""
    parts = []
    if owt.unigram_bpb and stories.unigram_bpb:
        ratio = owt.unigram_bpb / stories.unigram_bpb
        variety = ("more varied" if ratio > 1.05 else "less varied" if ratio < 1 / 1.05 else
                   "about as varied (within 5%)")
        parts.append(f"Token frequencies alone cost {num(owt.unigram_bpb, 3)} bits per byte on OpenWebText and "
                     f"{num(stories.unigram_bpb, 3)} on TinyStories: token by token the web text is {variety}.")
    if owt.context_gain is not None and stories.context_gain is not None:
        less = owt.context_gain < stories.context_gain
        parts.append(f"The context removes {percent(owt.context_gain)} of that entropy on OpenWebText and "
                     f"{percent(stories.context_gain)} on TinyStories: "
                     + ("with the same model and iterations, the web text's next token is less predictable from "
                        "its context." if less else "the context helps at least as much on the web text."))
    return parts


CORPUS_SAMPLE_CHARS = 200_000  # enough validation text for stable corpus proxies, read in a blink


def _samples(s: Section, inputs: ReportInputs, owt: MainRun, stories: MainRun) -> None:
    """The OpenWebText model's text, in the same format as the TinyStories samples, and its fluency judged from
    proxies measured on both models' samples and on each validation text."""
    if not owt.samples:
        s.say("_No samples of the OpenWebText model in this configuration (report.samples does not list it)._")
        return
    s.say(f"Generated text from `{owt.label}` (the same prompts, decoding settings and format as the TinyStories "
          "samples in `generate`), its first sample:")
    s.say("```text\n" + owt.samples[0] + "\n```")
    rows, corpus, seen = [], {}, {}
    for run in (owt, stories):
        path = inputs.file(f"valid_text/{run.dataset}")
        text = path.read_text(encoding="utf-8", errors="replace")[:CORPUS_SAMPLE_CHARS] if path else ""
        corpus[run.dataset] = _document_proxies(text)
        grams = set(_word_ngrams(text, 4))
        seen[run.dataset] = run.proxy(lambda t, grams=grams: _share_in(t, grams)) if grams else None
        rows.append({"text": f"`{run.label}` samples ({len(run.samples)})",
                     "distinct-2": num(run.proxy(_distinct_2), 3),
                     "repeated 4-grams": percent(run.proxy(repetition_rate)),
                     "4-grams found in the validation text": percent(seen[run.dataset])})
        rows.append({"text": f"`{run.dataset}` validation documents", "distinct-2": num(corpus[run.dataset][0], 3),
                     "repeated 4-grams": percent(corpus[run.dataset][1]), "4-grams found in the validation text": "—"})
    s.say("Fluency proxies (means): distinct-2 = unique word pairs / all word pairs of a text, repeated 4-grams = "
          "share of its word 4-grams already seen earlier in it, and the share of a sample's word 4-grams that "
          f"occur in the first {count(CORPUS_SAMPLE_CHARS)} characters of its validation text (phrases the corpus "
          "itself uses, a measure of local fluency); beside each model's samples, the first two on documents of its "
          "validation text.")
    s.table(rows)
    repeated, web = owt.proxy(repetition_rate), corpus["owt"][1]
    if repeated is None or web is None or owt.bpb is None or stories.bpb is None:
        return
    excess = repeated - web
    verdict = ("they loop, repeating themselves far more than web text does" if excess > 0.1 else
               "they repeat themselves somewhat more than web text does" if excess > 0.02 else
               "they repeat themselves no more than web text does")
    local = ""
    if seen["owt"] is not None and seen["tinystories"] is not None:
        fewer = seen["owt"] < seen["tinystories"]
        local = (f" {percent(seen['owt'])} of their word 4-grams occur in web text, against "
                 f"{percent(seen['tinystories'])} of the TinyStories samples' in stories: "
                 + ("less of the OpenWebText model's output is made of phrases its corpus uses, and more of it of "
                    "word sequences the corpus does not contain." if fewer else
                    "its output is made of its corpus's phrases at least as much."))
    s.say(f"Fluency of the OpenWebText samples: {percent(repeated)} of their 4-grams repeat, against {percent(web)} "
          f"in web text itself, so {verdict}." + local + " "
          + (f"Why its output is worse than the TinyStories model's with the same model and compute: it ends "
             f"{num(owt.bpb, 3)} bits per byte from its text against {num(stories.bpb, 3)} (the comparison above "
             "splits this gap into the text's variety and what the context predicts)." if owt.bpb > stories.bpb else
             f"Its loss per byte ({num(owt.bpb, 3)}) is not above the TinyStories model's ({num(stories.bpb, 3)}): "
             "by loss, the OpenWebText model is not the worse one here."))


def _word_ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    words = text.lower().split()
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def _share_in(text: str, grams: set[tuple[str, ...]]) -> float | None:
    """Share of the text's word 4-grams that are in `grams` (None when the text has none)."""
    own = _word_ngrams(text, 4)
    return sum(g in grams for g in own) / len(own) if own else None


def _document_proxies(text: str) -> tuple[float | None, float | None]:
    """Mean distinct-2 and repeated 4-grams over the first documents of a text (split at <|endoftext|>)."""
    docs = [d for d in text.split("<|endoftext|>") if len(d.split()) >= 8][:200]
    d2 = [v for d in docs if (v := distinct_n(d, 2)) is not None]
    rep = [v for d in docs if (v := repetition_rate(d)) is not None]
    return (sum(d2) / len(d2) if d2 else None, sum(rep) / len(rep) if rep else None)


def _changes(run: Any, base: Any) -> list[str]:
    return [f"{k}: {old} → {new}" for k, (old, new) in differences(base.run_config, run.run_config).items()]


def leaderboard(s: Section, inputs: ReportInputs) -> None:
    s.data_note(inputs.datasets_of("leaderboard"))
    demo = inputs.synthetic(inputs.datasets_of("leaderboard"))
    owt_main = next((inputs.summary(d) for _, e, _, d in inputs.members("main")
                     if inputs.experiment_datasets.get(e) == inputs.experiment_datasets.get(
                         inputs.roles["leaderboard"][0])), None)
    combination_path = inputs.file("combination/leaderboard")
    if combination_path is not None:
        _candidates(s, read_combination(combination_path))
        s.read_from(combination_path)
    for label, run_dir in inputs.runs("leaderboard").items():
        run = inputs.summary(run_dir)
        budget = run.config_value("train.wall_clock_budget_s")
        ended = ("stopped at the wall-clock budget" if run.stopped_early == "wall_clock" else
                 "finished its token budget before the wall-clock budget" if run.status != "diverged" else "diverged")
        s.table([{"run": label, "final val loss (whole split)": final_loss(run),
                  "validation tokens": count(run.final_val_tokens), "whole job": duration(run.job.total_s),
                  "budget": duration(budget) if budget else "none", "ended": ended, "tokens": count(run.tokens),
                  "tokens/s": count(run.tokens_per_s), "device": run.device or MISSING,
                  "baseline to beat": s.reference.cell("leaderboard_baseline", lambda v: f"{v:g}"),
                  "best published": s.reference.cell("leaderboard_best", lambda v: f"{v:.5g}")}])
        _job_time(s, run.job)
        if owt_main is not None:
            s.say("What this run does differently from the OpenWebText main run:")
            s.bullets(_changes(run, owt_main) or ["nothing: the same config"])
        if run.selected:
            s.say("Values chosen by other experiments: " + "; ".join(
                f"{key} = {v.value} (from `{v.source}`)" for key, v in run.selected.items()) + ".")
        best = s.reference.cell("leaderboard_best", lambda v: f"{v:.5g}")
        if demo:
            s.say(f"`{label}`: {outcome(run)}. On the demo's synthetic text neither the handout's "
                  f"{LEADERBOARD_BASELINE:.1f} baseline nor the best published 2025 leaderboard loss on OpenWebText "
                  f"({best}) applies: the run shows the candidates' selection, the whole job inside its wall-clock "
                  "budget and the curve drawn against that clock.")
        elif finished(run):
            beat = run.final_val_loss < LEADERBOARD_BASELINE
            s.say(f"`{label}` reaches {num(run.final_val_loss)} on the OpenWebText validation split, "
                  f"{'beating' if beat else 'not beating'} the {LEADERBOARD_BASELINE:.1f} baseline"
                  + (f" by {num(LEADERBOARD_BASELINE - run.final_val_loss, 3)}" if beat else "")
                  + f", in {duration(run.job.total_s)} for the whole job on {run.device}; the best published 2025 "
                  f"leaderboard loss is {best}. The budget is {LEADERBOARD_H100_HOURS:g} H100-hours; on other "
                  "hardware the time axis is not comparable.")
        s.read_from(f"{run_dir}/summary.json", f"{run_dir}/metrics.jsonl")
    s.figure("leaderboard")


def _job_time(s: Section, job: Any) -> None:
    """Where the whole job's time went, and whether it stayed inside its budget."""
    s.say("Where the job's time went (a wall-clock budget counts all of it, from the job's start to its summary):")
    s.table([{"start-up": duration(job.startup_s), "compile (first step)": duration(job.compile_s),
              "training": duration(job.train_s), "evaluation": duration(job.eval_s),
              "checkpoints": duration(job.checkpoint_s), "writing outputs": duration(job.write_s),
              "whole job": duration(job.total_s), "budget": duration(job.budget_s) if job.budget_s else "none"}])
    if job.budget_s:
        inside = job.total_s <= job.budget_s
        s.say(f"The whole job took {duration(job.total_s)} of its {duration(job.budget_s)} budget"
              + (", inside it" if inside else f", {duration(job.total_s - job.budget_s)} OVER it")
              + ": training stops once another step would leave too little time for the final validation "
              "(estimated from the measured evaluation speed) and the last writes. A Slurm run asks for exactly the "
              "budget (`--time=01:30:00` for the handout's 1.5 hours).")


def _candidates(s: Section, combination: Combination) -> None:
    """The candidate modifications against the baseline, each with its effect and the noise floor, and the choice."""
    if combination.sigma is None:
        noise = "the seed noise is not measured"
    else:
        noise = f"the noise floor σ = {combination.sigma:.4f}, resolution {combination.resolution:.4f}"
    s.say(f"Candidate modifications (`{combination.experiment}`): each trained against the baseline at the same "
          "budget, with several seeds. Effect = the baseline's mean final validation loss − the modification's "
          f"(positive: better), against {noise}. Rule: {combination.rule}.")
    rows = [{"modification": "baseline", "overrides": "-", "mean final val loss": num(combination.baseline_mean),
             "per seed": ", ".join(num(v) for v in combination.baseline), "effect ± resolution": "-",
             "combined": "-"}]
    for effect in combination.effects:
        rows.append({
            "modification": effect.variant,
            "overrides": ", ".join(f"{k}: {v}" for k, v in effect.overrides.items()),
            "mean final val loss": num(effect.mean),
            "per seed": ", ".join(num(v) for v in effect.losses),
            "effect ± resolution": (f"{effect.improvement:+.4f} ± {combination.resolution:.4f}"
                                    if effect.improvement is not None else "a seed was not stable"),
            "combined": "yes" if effect.helped else "no"})
    s.table(rows)
    s.say(f"The choice for the runs that combine them: {combination.why}.")
