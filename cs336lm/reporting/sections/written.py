"""Handout §3.6 `transformer_accounting`, §4.2 `learning_rate_tuning` and §4.3 `adamwAccounting`, answered from the
tables the `solve_problem` rule computes (problems/*.csv, made by cs336lm.lm.accounting and
cs336lm.problems.toy_sgd)."""

from __future__ import annotations

import pandas as pd

from cs336lm.reporting.document import Section, count, flops, num, percent, size
from cs336lm.reporting.inputs import ReportInputs

CONVENTIONS = ("Conventions: the handout's architecture, which is ours (SwiGLU feed-forward with three bias-free "
               "matrices, untied input embedding and LM head, RMSNorm gains as the only vectors, no biases). GPT-2 XL "
               "as §3.6 lists it: \"vocab_size : 50,257, context_length : 1,024, num_layers : 48, d_model : 1,600, "
               "num_heads : 25, d_ff : 6,400\". For small, medium and large the handout gives layers, d_model and "
               "heads only; we keep the vocabulary and context of XL and take d_ff = 4 · d_model, GPT-2's own ratio "
               "and the one XL's 6,400 follows (our choice). Costs follow §3.6's rule: \"the matrix-matrix product "
               "AB requires 2mnp FLOPs\"; attention counts the full T×T matrix; elementwise work is not counted.")


def transformer_accounting(s: Section, inputs: ReportInputs) -> None:
    path = inputs.file("problem/transformer_accounting")
    table = pd.read_csv(path)
    s.say(CONVENTIONS)
    xl = table[(table.model == "GPT-2 XL") & (table.context_length == 1024)]
    params = xl[xl.quantity == "parameters"].set_index("component")["value"]
    load = xl[xl.quantity == "float32 bytes to load"]["value"].iloc[0]
    T, d, V, d_ff, L = (int(xl[k].iloc[0]) for k in ("context_length", "d_model", "vocab_size", "d_ff", "num_layers"))
    s.say(f"(a) GPT-2 XL built as our model has **{count(params['total'])} trainable parameters** "
          f"(P = 2·V·d + L·(4·d² + 3·d·d_ff + 2·d) + d: embeddings and LM head {count(2 * params['LM head'])}, "
          f"attention {count(params['attention (Q, K, V, output)'])}, feed-forward {count(params['feed-forward'])}, "
          f"RMSNorm gains {count(params['RMSNorm gains'])}); in single-precision float (4 bytes each) they take "
          f"**{size(load)}** ({load / 2**30:.3g} GiB) just to load.")
    forward = xl[xl.quantity == "forward FLOPs"].set_index("component")
    shapes = {
        "Q, K, V projections": f"(T×d)(d×d), three per layer: L·3·2·T·d² = {L}·6·{T}·{d}²",
        "attention scores QKᵀ": f"per head (T×d_k)(d_k×T), all heads: L·2·T²·d = {L}·2·{T}²·{d}",
        "attention-weighted values AV": f"per head (T×T)(T×d_k), all heads: L·2·T²·d = {L}·2·{T}²·{d}",
        "attention output projection": f"(T×d)(d×d): L·2·T·d² = {L}·2·{T}·{d}²",
        "feed-forward": f"W1, W3 (T×d)(d×d_ff) and W2 (T×d_ff)(d_ff×d): L·3·2·T·d·d_ff = {L}·6·{T}·{d}·{d_ff:,}",
        "LM head": f"(T×d)(d×V): 2·T·d·V = 2·{T}·{d}·{V:,}",
    }
    s.say(f"(b) The matrix multiplies of one forward pass over context_length T = {T:,} tokens (d_k = d / h):")
    s.table([{"matmul": name, "shape and count": shapes[name], "FLOPs": flops(row.value), "share": percent(row.share)}
             for name, row in forward.drop(index="total").iterrows()])
    s.say(f"In total **{flops(forward.loc['total', 'value'])}** ({count(forward.loc['total', 'value'])} FLOPs) "
          "per forward pass of one sequence.")
    top = forward.drop(index="total")["share"].sort_values(ascending=False)
    attention = forward.loc[["attention scores QKᵀ", "attention-weighted values AV"], "share"].sum()
    s.say(f"(c) The {top.index[0]} needs the most FLOPs, {percent(top.iloc[0])} of the total, then the "
          f"{top.index[1]} ({percent(top.iloc[1])}); attention's two T² matmuls together take "
          f"{percent(attention)}.")
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
    sizes = [label for label in labels.values() if "T =" not in label]
    first, last = share[sizes[0]].drop("total"), share[sizes[-1]].drop("total")

    def moves(components) -> str:
        return ", ".join(f"{c} ({percent(first[c])} → {percent(last[c])})" for c in components)

    more, less = first.index[last > first], first.index[last < first]
    s.say(f"(d) From {sizes[0]} to {sizes[-1]}, the components that take proportionally more of the FLOPs are "
          f"{moves(more) or 'none'}; those that take less are {moves(less) or 'none'}. Why (our reasoning): per "
          "token, the projections and the feed-forward cost L·d² (times a constant), the attention matmuls L·T·d "
          "and the LM head d·V, so at a fixed context and vocabulary the d²-sized matmuls grow fastest with width.")
    xl, long = share["GPT-2 XL"], share["GPT-2 XL, T = 16,384"]
    total = {label: forward[(forward.model == m) & (forward.context_length == t) &
                            (forward.component == "total")].value.iloc[0] for (m, t), label in labels.items()}
    ratio = total["GPT-2 XL, T = 16,384"] / total["GPT-2 XL"]
    attention = ["attention scores QKᵀ", "attention-weighted values AV"]
    grew = [c for c in xl.index if c != "total" and long[c] > xl[c]]
    s.say(f"(e) At a context of 16,384 one GPT-2 XL forward pass costs {flops(total['GPT-2 XL, T = 16,384'])}, "
          f"{num(ratio, 3)}× the {flops(total['GPT-2 XL'])} at 1,024: 16× more tokens, and the T² attention terms "
          f"grow 256×. Attention's QKᵀ and AV go from {percent(xl[attention].sum())} to "
          f"{percent(long[attention].sum())} of the FLOPs; every other component's share falls (the feed-forward's "
          f"from {percent(xl['feed-forward'])} to {percent(long['feed-forward'])})."
          if set(grew) <= set(attention) else
          f"(e) At a context of 16,384 one GPT-2 XL forward pass costs {flops(total['GPT-2 XL, T = 16,384'])}, "
          f"{num(ratio, 3)}× the {flops(total['GPT-2 XL'])} at 1,024; the shares that grow: {', '.join(grew)}.")


def learning_rate_tuning(s: Section, inputs: ReportInputs) -> None:
    path = inputs.file("problem/learning_rate_tuning")
    table = pd.read_csv(path)
    losses = table.pivot(index="step", columns="lr", values="loss")
    s.say("§4.2's toy problem as the handout writes it: `weights = torch.nn.Parameter(5 * torch.randn((10, 10)))` "
          "(seed 0 here), loss `(weights**2).mean()`, and its example SGD whose update is "
          "`p.data -= lr / math.sqrt(t + 1) * grad`; the example's own lr = 1 beside the three rates the problem "
          "asks for, \"1e1, 1e2, and 1e3, for just 10 training iterations\", all from the same initial weights. "
          "Each row is the loss the loop prints at that iteration (before its step).")
    s.table([{"iteration": step, **{f"lr = {lr:g}": num(v, 4) for lr, v in row.items()}} for step, row in
             losses.iterrows()])
    start, end = losses.iloc[0], losses.iloc[-1]
    base = min(losses.columns)
    verdict = []
    for lr in losses.columns:
        if lr == base:
            continue
        if end[lr] > start[lr]:
            verdict.append(f"at lr {lr:g} it diverges, growing from {num(start[lr], 4)} to {num(end[lr], 3)}")
        else:
            pace = "faster" if end[lr] < end[base] else "slower"
            fastest = " (the fastest of all)" if end[lr] == end.min() else ""
            verdict.append(f"at lr {lr:g} it decays {pace} than at lr {base:g}{fastest}, to {num(end[lr], 3)} after "
                           f"{len(losses)} iterations")
    s.say(f"Observed: at the example's lr {base:g} the loss decays slowly, from {num(start[base], 4)} to "
          f"{num(end[base], 4)}; " + "; ".join(verdict) + ".")
    s.read_from(path)


def adamw_accounting(s: Section, inputs: ReportInputs) -> None:
    path = inputs.file("problem/adamw_accounting")
    table = pd.read_csv(path).set_index("quantity")
    s.say("§4.3 asks to \"Assume we are using float32 for every tensor\" (4 bytes) and \"Assume d_ff = 4 × "
          "d_model\". B = batch_size, T = context_length, L = num_layers, d = d_model, h = num_heads, V = "
          "vocab_size; P = parameters. Activations count one stored tensor per item of the handout's list: per "
          "block the two RMSNorm outputs (2·B·T·d), the QKV projections (3·B·T·d), the Q⊤K matrix multiply and its "
          "softmax (2·B·h·T²), the weighted sum of values and the output projection (2·B·T·d), then \"W1 matrix "
          "multiply, SiLU, W2 matrix multiply\" (2·B·T·d_ff + B·T·d = 9·B·T·d); after the blocks the final RMSNorm "
          "(B·T·d), the output embedding's logits (B·T·V) and the cross-entropy on them (B·T·V). That list names a "
          "two-matrix feed-forward, so the handout column counts one (parameters 2·d·d_ff per block). Our model's "
          "SwiGLU has three matrices: its column adds W3 (d·d_ff parameters per block) and the activations of W3 "
          "and of the gated product (2·B·T·d_ff per block), at the same d_ff = 4 · d_model.")
    units = {"bytes": size, "parameters": count, "FLOPs": _flop_count, "sequences": count,
             "seconds": lambda v: f"{v:.4g} s", "days": lambda v: f"{v:,.0f} days"}
    s.table([{"part": r.part, "quantity": q,
              "as the handout lists it (W1, SiLU, W2)": f"`{r.handout_formula}`",
              "GPT-2 XL": units[r.unit](r.handout_value),
              "our SwiGLU (W1, W3, SiLU, product, W2)": f"`{r.swiglu_formula}`",
              "GPT-2 XL, SwiGLU": units[r.unit](r.swiglu_value)} for q, r in table.iterrows()])
    h, w = table["handout_value"], table["swiglu_value"]
    a, b = "a (bytes per sequence in the batch)", "b (bytes independent of the batch)"
    formula = table["handout_formula"]
    activations = formula["activations at batch 1"]
    s.say(f"(a) In bytes, with the handout's feed-forward (W1, SiLU, W2) and d_ff = 4·d, so that P = "
          f"{formula['parameters P']}: parameters **4·P**, gradients **4·P**, AdamW's optimizer state (m and v) "
          f"**8·P**, activations **{activations}**, and the peak total **16·P + {activations}**.",
          f"(b) GPT-2 XL (V = 50,257, T = 1,024, L = 48, d = 1,600, h = 25): memory ≈ **{h[a] / 1e9:.4g} GB · "
          f"batch_size + {h[b] / 1e9:.4g} GB** (a = {count(h[a])} and b = {count(h[b])} bytes), so the largest "
          f"batch within 80 GB (80·10⁹ bytes) is **{count(h['largest batch in 80 GB'])}** "
          f"({count((80 * 2**30 - h[b]) // h[a])} if 80 GB is read as 80 GiB). With our SwiGLU: "
          f"{w[a] / 1e9:.4g} GB · batch_size + {w[b] / 1e9:.4g} GB, largest batch "
          f"{count(w['largest batch in 80 GB'])}.",
          f"(c) One AdamW step costs about **14·P FLOPs** ({_flop_count(h['AdamW step FLOPs'])} for GPT-2 XL): per "
          "parameter 3 for m ← β1·m + (1 − β1)·g, 4 for v ← β2·v + (1 − β2)·g², 5 for θ ← θ − α_t·m / (√v + ε) "
          "(square root, add ε, divide, scale, subtract) and 2 for the weight decay θ ← θ − α·λ·θ; α_t and the bias "
          "corrections are scalars computed once per step.",
          f"(d) A step at batch 1,024 costs 3 × the forward FLOPs (\"the backward pass has twice the FLOPs of the "
          f"forward pass\") plus the AdamW update: {_flop_count(h['training step FLOPs at batch 1,024'])}; 400K "
          f"steps, {_flop_count(h['training FLOPs, 400K steps'])}. At 50% MFU of the A100's \"theoretical peak of "
          f"19.5 teraFLOP/s for float32 operations\" (9.75·10¹² FLOP/s sustained) that takes "
          f"**{h['training time in days']:,.0f} days** ({h['training time in days'] / 365.25:.1f} years) on one "
          f"A100. With our SwiGLU feed-forward (d_ff = 6,400, the GPT-2 XL of transformer_accounting): "
          f"{w['training time in days']:,.0f} days.")
    s.read_from(path)


def _flop_count(value: float) -> str:
    """FLOPs in scientific notation, which stays readable from 10¹⁰ to 10²²."""
    return f"{value:.4g} FLOPs"
