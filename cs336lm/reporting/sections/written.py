"""Handout §3.6 `transformer_accounting`, §4.2 `learning_rate_tuning` and §4.3 `adamwAccounting`, answered from the
tables the `solve_problem` rule computes (problems/*.csv, made by cs336lm.lm.accounting and
cs336lm.problems.toy_sgd)."""

from __future__ import annotations

import pandas as pd

from cs336lm.reporting.document import Section, count, flops, num, percent, size
from cs336lm.reporting.inputs import ReportInputs

CONVENTIONS = ("Conventions: our architecture (SwiGLU feed-forward with three bias-free matrices, untied input "
               "embedding and LM head, RMSNorm gains as the only vectors, no biases), d_ff the multiple of 64 "
               "nearest 8/3 · d_model (4,288 for GPT-2 XL, as the handout states), vocabulary 50,257; a matmul of "
               "m×n by n×p costs 2mnp FLOPs; attention over the full T×T matrix; elementwise work is not counted.")


def transformer_accounting(s: Section, inputs: ReportInputs) -> None:
    path = inputs.file("problem/transformer_accounting")
    table = pd.read_csv(path)
    s.say(CONVENTIONS)
    xl = table[(table.model == "GPT-2 XL") & (table.context_length == 1024)]
    params = xl[xl.quantity == "parameters"].set_index("component")["value"]
    load = xl[xl.quantity == "float32 bytes to load"]["value"].iloc[0]
    wide = xl[xl.quantity == "parameters with d_ff = 4·d_model"]["value"].iloc[0]
    s.say(f"(a) GPT-2 XL in our architecture has **{count(params['total'])} trainable parameters** "
          f"(P = 2·V·d + L·(4·d² + 3·d·d_ff + 2·d) + d); in float32 they take {size(load)} "
          f"({load / 2**30:.3g} GiB) just to load. (With GPT-2's own d_ff = 4·d_model = 6,400 in the same three-matrix "
          f"feed-forward, as an earlier version of the handout asks, it would be {count(wide)}.)")
    forward = xl[xl.quantity == "forward FLOPs"].set_index("component")
    T, d, V, d_ff = 1024, 1600, 50_257, 4288
    shapes = {
        "Q, K, V projections": f"(T×d)(d×d), three per layer: L·3·2·T·d² = 48·6·{T}·{d}²",
        "attention scores QKᵀ": f"per head (T×d_k)(d_k×T), all heads: L·2·T²·d = 48·2·{T}²·{d}",
        "attention-weighted values AV": f"per head (T×T)(T×d_k), all heads: L·2·T²·d = 48·2·{T}²·{d}",
        "attention output projection": f"(T×d)(d×d): L·2·T·d² = 48·2·{T}·{d}²",
        "feed-forward": f"W1, W3 (T×d)(d×d_ff) and W2 (T×d_ff)(d_ff×d): L·3·2·T·d·d_ff = 48·6·{T}·{d}·{d_ff}",
        "LM head": f"(T×d)(d×V): 2·T·d·V = 2·{T}·{d}·{V}",
    }
    s.say(f"(b) The matrix multiplies of one forward pass over T = {T} tokens:")
    s.table([{"matmul": name, "shape and count": shapes[name], "FLOPs": flops(row.value), "share": percent(row.share)}
             for name, row in forward.drop(index="total").iterrows()])
    s.say(f"In total **{flops(forward.loc['total', 'value'])}** ({count(forward.loc['total', 'value'])} FLOPs) "
          "per forward pass of one sequence.")
    top = forward.drop(index="total")["share"].sort_values(ascending=False)
    s.say(f"(c) The {top.index[0]} dominates with {percent(top.iloc[0])} of the FLOPs, then the "
          f"{top.index[1]} ({percent(top.iloc[1])}): the d²-sized matmuls of the blocks, not attention's T² terms, "
          "cost the most at this context length.")
    _shares_table(s, table)
    s.read_from(path)


def _shares_table(s: Section, table: pd.DataFrame) -> None:
    """(d) and (e): each model's forward-FLOP shares per component."""
    forward = table[table.quantity == "forward FLOPs"]
    labels = {(m, t): m if t == 1024 else f"{m}, T = {t:,}" for m, t in
              forward[["model", "context_length"]].drop_duplicates().itertuples(index=False)}
    rows = []
    for component in forward.component.drop_duplicates():
        row = {"component": component}
        for (model, context), label in labels.items():
            cell = forward[(forward.model == model) & (forward.context_length == context) &
                           (forward.component == component)].iloc[0]
            row[label] = flops(cell.value) if component == "total" else percent(cell.share)
        rows.append(row)
    s.say("(d), (e) Forward FLOPs by component as a share of the total, for each model (T = 1,024 unless noted):")
    s.table(rows)
    share = {label: forward[(forward.model == m) & (forward.context_length == t)].set_index("component")["share"]
             for (m, t), label in labels.items()}
    small, xl, long = share["GPT-2 small"], share["GPT-2 XL"], share["GPT-2 XL, T = 16,384"]
    attention = ["attention scores QKᵀ", "attention-weighted values AV"]
    total = {label: forward[(forward.model == m) & (forward.context_length == t) &
                            (forward.component == "total")].value.iloc[0] for (m, t), label in labels.items()}
    s.say(f"(d) As the model grows, the feed-forward share rises ({percent(small['feed-forward'])} for small to "
          f"{percent(xl['feed-forward'])} for XL) and the projections' share with it, because they grow with "
          f"L·d², while the LM head falls ({percent(small['LM head'])} to {percent(xl['LM head'])}, it grows only "
          f"with d) and so do the attention terms ({percent(small[attention].sum())} to "
          f"{percent(xl[attention].sum())}: L·T²·d grows slower than L·d² at a fixed T).")
    s.say(f"(e) At a context of 16,384 one GPT-2 XL forward pass costs {flops(total['GPT-2 XL, T = 16,384'])}, "
          f"{num(total['GPT-2 XL, T = 16,384'] / total['GPT-2 XL'], 3)}× the {flops(total['GPT-2 XL'])} at 1,024 "
          "(16× more tokens, and the T² terms grow 256×). Attention's QKᵀ and AV go from "
          f"{percent(xl[attention].sum())} to {percent(long[attention].sum())} of the FLOPs and dominate; the "
          f"feed-forward falls to {percent(long['feed-forward'])}.")


def learning_rate_tuning(s: Section, inputs: ReportInputs) -> None:
    path = inputs.file("problem/learning_rate_tuning")
    table = pd.read_csv(path)
    losses = table.pivot(index="step", columns="lr", values="loss")
    s.say("The handout's toy problem: w a 10×10 matrix drawn as 5·N(0, 1) (seed 0), loss mean(w²), SGD with step "
          "size lr / sqrt(t + 1), 10 steps per learning rate, all from the same initial weights.")
    s.table([{"step": step, **{f"lr = {lr:g}": num(v, 4) for lr, v in row.items()}} for step, row in
             losses.iterrows()])
    start = losses.iloc[0]
    verdict = []
    for lr in losses.columns:
        first, last = start[lr], losses[lr].iloc[-1]
        if last > first:
            verdict.append(f"at lr {lr:g} the loss diverges, growing to {num(last, 3)}")
        else:
            verdict.append(f"at lr {lr:g} it decays to {num(last, 3)} ({num(last / first, 3)} of the start)")
    decaying = sorted(lr for lr in losses.columns if losses[lr].iloc[-1] <= start[lr])
    finals = [losses[lr].iloc[-1] for lr in decaying]
    monotone = all(b < a for a, b in zip(finals, finals[1:], strict=False))
    diverging = sorted(lr for lr in losses.columns if lr not in decaying)
    summary = ""
    if decaying and monotone:
        summary = (f" Among the rates that converge, the larger the rate the faster the decay (lr {decaying[-1]:g} "
                   "is fastest)")
        summary += (f", while lr {diverging[0]:g} overshoots the minimum by more at every step and diverges."
                    if diverging else ".")
    s.say("From the same start " + "; ".join(verdict) + "." + summary)
    s.say("Reference: " + s.reference.cell("toy_sgd") + ".")
    s.read_from(path)


def adamw_accounting(s: Section, inputs: ReportInputs) -> None:
    path = inputs.file("problem/adamw_accounting")
    table = pd.read_csv(path).set_index("quantity")
    s.say("All tensors float32 (4 bytes); B = batch size, T = context length, L = layers, d = d_model, "
          "h = heads, V = vocabulary, d_ff the SwiGLU width (≈ 8/3·d). Activations count one stored tensor per item "
          "of the handout's list: per block the two RMSNorm outputs (2·B·T·d), Q, K, V (3·B·T·d), QKᵀ and its "
          "softmax (2·B·h·T²), the weighted sum and output projection (2·B·T·d), W1 and W3 outputs, SiLU and the "
          "elementwise product (4·B·T·d_ff) and W2 (B·T·d); then the final RMSNorm (B·T·d), the logits and the "
          "cross-entropy's softmax (2·B·T·V).")
    value = table["value"]
    units = {"bytes": size, "parameters": count, "FLOPs": flops, "sequences": count,
             "hours": lambda v: f"{v:,.0f} h", "days": lambda v: f"{v:,.1f} days"}
    s.table([{"part": r.part, "quantity": q, "formula": f"`{r.formula}`", "GPT-2 XL": units[r.unit](r.value)}
             for q, r in table.iterrows()])
    a, b = value["a (bytes per sequence in the batch)"], value["b (bytes independent of the batch)"]
    s.say("(a) Peak memory = 16·P (parameters 4·P, gradients 4·P, AdamW's m and v 8·P) + activations, with P and "
          "the activations as in the table.",
          f"(b) For GPT-2 XL: memory ≈ {a / 1e9:.4g} GB · batch_size + {b / 1e9:.4g} GB, so the largest batch that "
          f"fits in 80 GB is **{count(value['largest batch in 80 GB'])}**.",
          f"(c) One AdamW step costs 14·P = {flops(value['AdamW step FLOPs'])}: per parameter 3 FLOPs for m, 4 for "
          "v, 5 for the update (square root, add ε, divide, scale by the bias-corrected rate, subtract) and 2 for "
          "the decoupled weight decay.",
          f"(d) A training step at batch 1,024 costs 3 × the forward FLOPs (backward = 2 × forward) + the AdamW "
          f"update = {flops(value['training step FLOPs at batch 1024'])}. At 50% MFU of the H100's 495 TFLOP/s "
          f"(the handout's figure for float32 via TF32), 400K steps take "
          f"**{value['training time, 400K steps on one H100 at 50% MFU']:,.0f} hours, "
          f"{value['training time in days']:,.0f} days**.")
    s.read_from(path)
