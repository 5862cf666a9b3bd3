"""Handout §7.3: the four architecture ablations (`layer_norm_ablation`, `pre_norm_ablation`, `no_pos_emb`,
`swiglu_ablation`), each an ablation variant against the baseline, judged against run-to-run noise and against
our expectation (the handout states none; its own words are quoted beside ours)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cs336lm.experiments.noise import NoiseFloor
from cs336lm.reporting.document import Section, count, num
from cs336lm.reporting.inputs import ReportInputs
from cs336lm.reporting.runs import finished, outcome
from cs336lm.reporting.sections.common import final_loss, noise_estimate, selected_note
from cs336lm.training.divergence import OUTCOMES
from cs336lm.training.identity import differences


@dataclass(frozen=True)
class Ablation:
    key: str  # the config key the ablation changes ...
    value: str  # ... to this value
    handout: str  # what the handout itself says about it, quoted
    expected: str  # our expectation (the handout asks "see what happens" and predicts no outcome), as a clause
    expect_worse: bool = True  # we expect the variant to end above the baseline (or not train stably)


LAYER_NORM = Ablation(
    "model.norm", "none", "\"It is often said that layer normalization is important for the stability of "
    "Transformer training\" (§7.3)", "without RMSNorm, training at the baseline's (previously optimal) rate "
    "becomes unstable, and a lower rate trains stably but ends worse than the baseline")
PRE_NORM = Ablation(
    "model.norm_position", "post", "pre-norm \"is one of the few 'consensus' modifications to the original "
    "Transformer architecture\" and \"even the position of the layer normalization is important\" (§7.3)",
    "post-norm trains worse than pre-norm")
NO_POS_EMB = Ablation(
    "model.pos_emb", "none", "decoder-only Transformers with a causal mask \"can in theory infer relative or absolute "
    "position information without being provided with position embeddings explicitly\" (§7.3)",
    "NoPE still learns, but ends somewhat worse than RoPE")
SWIGLU = Ablation(
    "model.ffn", "silu", "the comparison tests \"the importance of gating in the feed-forward network\" (§7.3, "
    "following Shazeer 2020)", "a SiLU feed-forward at a matched parameter count ends worse than SwiGLU")


def _changes(run: Any, base: Any) -> str:
    changed = differences(base.run_config, run.run_config)
    return ", ".join(f"{k} = {v}" for k, (_, v) in changed.items()) or "same config"


def _reason(inputs: ReportInputs, delta: float | None, noise: NoiseFloor) -> str:
    if delta is not None and not noise.resolved(delta):
        return "the difference is not resolved against the seed noise, so these runs cannot tell the two apart"
    if inputs.synthetic(inputs.datasets_of("ablations")):
        return ("at demo scale (a tiny model trained for a few hundred steps on synthetic text) the effect we "
                "expected need not show")
    return ("the variant trained at the baseline's tuned learning rate, which need not suit it, and for one "
            "seed only")


def variant_needed(spec: Ablation):
    """What an ablation deliverable lacks when no ablation run sets spec.key = spec.value (it was not run)."""

    def missing(inputs: ReportInputs) -> list[str]:
        runs = inputs.summaries("ablations")
        if any(sm.config_value(spec.key) == spec.value for k, sm in runs.items() if k != inputs.baseline):
            return []
        return [f"an ablation run with {spec.key} = {spec.value}"]

    return missing


def ablation(spec: Ablation):
    """The writer of one ablation deliverable: every ablation variant with spec.key = spec.value."""

    def write(s: Section, inputs: ReportInputs) -> None:
        s.data_note(inputs.datasets_of("ablations"), inputs.summaries("ablations").values())
        runs, summaries = inputs.runs("ablations"), inputs.summaries("ablations")
        base_name = inputs.baseline
        base = summaries[base_name]
        variants = [k for k, sm in summaries.items() if k != base_name and sm.config_value(spec.key) == spec.value]
        base_lr = base.config_value("optim.lr_max")
        s.say(f"Baseline `{base_name}` (pre-norm, RMSNorm, RoPE, SwiGLU): lr {base_lr:g}"
              f"{selected_note(base, 'optim.lr_max')}, {outcome(base)}, "
              f"{count(base.parameters.non_embedding)} non-embedding parameters.")
        noise, how = noise_estimate(inputs)
        rows = [{"run": base_name, "change": "—", "outcome": OUTCOMES.get(base.status, base.status),
                 "final val loss": final_loss(base),
                 "Δ vs baseline": "—", "non-embedding parameters": count(base.parameters.non_embedding),
                 "reference": s.reference.cell(f"ablation_val_loss/{base_name}", lambda v: f"{v:.4g}")}]
        verdicts = []
        for name in variants:
            run = summaries[name]
            delta = run.final_val_loss - base.final_val_loss if finished(run) and finished(base) else None
            params = run.parameters.non_embedding
            base_params = base.parameters.non_embedding
            rows.append({"run": name, "change": _changes(run, base), "outcome": OUTCOMES.get(run.status, run.status),
                         "final val loss": final_loss(run), "Δ vs baseline": num(delta, 3) if delta is not None
                         else "—",
                         "non-embedding parameters": f"{count(params)} ({(params - base_params) / base_params:+.1%})",
                         "reference": s.reference.cell(f"ablation_val_loss/{name}", lambda v: f"{v:.4g}")})
            verdicts.append(_verdict(inputs, spec, name, run, base, delta, noise,
                                     {k: summaries[k] for k in variants if k != name}))
        s.table(rows)
        s.say(*verdicts, how)
        s.say(f"The handout: {spec.handout}; it predicts no result. Our expectation: {spec.expected}.")
        s.read_from(*(f"{runs[k]}/summary.json" for k in [base_name, *variants]))

    return write


def _verdict(inputs: ReportInputs, spec: Ablation, name: str, run: Any, base: Any, delta: float | None,
             noise: NoiseFloor, siblings: dict[str, Any]) -> str:
    """One sentence: what the variant did, and whether that agrees with our expectation. A variant at a
    lower rate than the baseline asks whether that rate restores stability: it is judged against its sibling with
    the same change at the baseline's rate (`siblings`: the other variants of this ablation)."""
    lr, base_lr = run.config_value("optim.lr_max"), base.config_value("optim.lr_max")
    at_base_rate = [k for k, sm in siblings.items() if sm.config_value("optim.lr_max") == base_lr]
    if lr < base_lr and at_base_rate and finished(run):
        return _lower_rate_verdict(name, run, at_base_rate[0], siblings[at_base_rate[0]], base, lr / base_lr, noise)
    at = "at the baseline's rate" if lr == base_lr else f"at lr {lr:g} ({lr / base_lr:.3g}× the baseline's)"
    if run.status in ("diverged", "unstable"):
        agrees = spec.expect_worse and lr >= base_lr
        how = f"diverged at step {count(run.steps)}" if run.status == "diverged" else \
            f"was unstable ({run.instability})"
        return (f"`{name}` {at} {how}, while the baseline trained stably"
                + (": as we expected." if agrees else
                   f"; against our expectation, possibly because {_reason(inputs, None, noise)}."))
    if delta is None:
        return f"`{name}` {at}: {outcome(run)}."
    resolved = noise.resolved(delta)
    worse = delta > 0
    text = (f"`{name}` {at} ended {num(abs(delta), 3)} nats {'above' if worse else 'below'} the baseline "
            f"({'worse' if worse else 'better'}; {noise.judge(delta)})")
    if not resolved:
        return text + ": no effect these runs can resolve."
    if worse == spec.expect_worse:
        return text + ": as we expected."
    return text + f"; against our expectation, possibly because {_reason(inputs, delta, noise)}."


def _lower_rate_verdict(name: str, run: Any, sibling: str, at_base: Any, base: Any, ratio: float,
                        noise: NoiseFloor) -> str:
    """Whether a lower rate restored stability: what the same change did at the baseline's rate decides."""
    delta = run.final_val_loss - base.final_val_loss
    text = (f"`{name}` at lr {run.config_value('optim.lr_max'):g} ({ratio:.3g}× the baseline's) ended "
            f"{num(abs(delta), 3)} nats {'above' if delta > 0 else 'below'} the baseline ({noise.judge(delta)})")
    if at_base.status in ("diverged", "unstable"):
        return text + f"; `{sibling}` was {at_base.status} at the baseline's rate, so the lower rate restores " \
                      "stable training."
    if not finished(at_base):
        return text + "."
    gap = run.final_val_loss - at_base.final_val_loss
    return (text + f". `{sibling}` already trained stably at the baseline's rate (final validation loss "
            f"{num(at_base.final_val_loss)}), so there was no instability for the lower rate to fix; it ended "
            f"{num(abs(gap), 3)} nats {'above' if gap > 0 else 'below'} that run ({noise.judge(gap)})"
            + (": with the same tokens, a lower rate mainly trains slower." if gap > 0 and noise.resolved(gap)
               else "."))
