"""The handout's written problems, answered by code that runs in the workflow (rule `solve_problem`): each writes
one table, `problems/<name>.csv`, that the writeup quotes. §2 unicode1/unicode2, §3.6 transformer_accounting,
§4.2 learning_rate_tuning, §4.3 adamw_accounting."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import pandas as pd

from cs336lm.atomic import atomic_path
from cs336lm.lm import accounting
from cs336lm.problems.unicode import unicode1, unicode2

SAMPLE_BYTES = 1 << 16  # text sample per corpus for the encoding-length comparison

# adamwAccounting's setting, in the handout's words: "GPT-2 XL for 400K steps and a batch size of 1024 on a single
# A100", whose "theoretical peak of 19.5 teraFLOP/s for float32 operations" runs at "50% MFU"; "80GB" of memory,
# read as decimal gigabytes.
TRAINING_STEPS, TRAINING_BATCH, A100_FLOAT32_PEAK, MFU = 400_000, 1024, 19.5e12, 0.5
MEMORY_BYTES = 80e9
LONG_CONTEXT = 16_384
# adamwAccounting's two readings of the feed-forward, both at the handout's "d_ff = 4 × d_model": the handout's
# activation list ("W1 matrix multiply, SiLU, W2 matrix multiply", two matrices) and our SwiGLU (three matrices).
FFN_READINGS = {"handout": "silu", "swiglu": "swiglu"}


def _text_samples(paths: Mapping[str, str | os.PathLike]) -> dict[str, str]:
    """The first SAMPLE_BYTES of each text file (a character cut at the end is dropped)."""
    samples = {}
    for name, path in paths.items():
        with open(path, "rb") as f:
            samples[name] = f.read(SAMPLE_BYTES).decode("utf-8", errors="ignore")
    return samples


def _toy_sgd() -> pd.DataFrame:
    from cs336lm.problems.toy_sgd import learning_rate_tuning  # torch, loaded only for the one problem that runs it

    return learning_rate_tuning()


def transformer_accounting() -> pd.DataFrame:
    """Parameters (and float32 bytes to load them) and forward FLOPs with shares, per component, for each GPT-2
    size at context 1,024 and GPT-2 XL at 16,384, all in the handout's architecture (SwiGLU, d_ff = 4 · d_model)."""
    models = [(name, 1024) for name in accounting.GPT2_SHAPES] + [("GPT-2 XL", LONG_CONTEXT)]
    rows = []
    for name, context in models:
        config = accounting.gpt2_config(name, context_length=context)
        base = {"model": name, "vocab_size": config.vocab_size, "context_length": context,
                "num_layers": config.num_layers,
                "d_model": config.d_model, "num_heads": config.num_heads, "d_ff": config.d_ff}
        params = accounting.parameter_counts(config)
        flops = accounting.forward_flops(config)
        rows += [{**base, "quantity": "parameters", "component": k, "value": v, "share": v / params["total"]}
                 for k, v in params.items()]
        rows.append({**base, "quantity": "float32 bytes to load", "component": "total",
                     "value": accounting.FLOAT32_BYTES * params["total"], "share": 1.0})
        rows += [{**base, "quantity": "forward FLOPs", "component": k, "value": v, "share": v / flops["total"]}
                 for k, v in flops.items()]
    return pd.DataFrame(rows)


def adamw_accounting() -> pd.DataFrame:
    """GPT-2 XL (d_ff = 4 · d_model) under each reading of the feed-forward (`handout_*` and `swiglu_*` columns,
    formula and value): (a) peak memory by component, (b) the a · B + b line and the largest batch in 80 GB,
    (c) the FLOPs of one AdamW step, (d) the days to train 400K steps of batch 1,024 on one A100 at 50% MFU."""
    columns = {}
    for reading, ffn in FFN_READINGS.items():
        xl = accounting.gpt2_config("GPT-2 XL", ffn=ffn)
        memory = accounting.adamw_memory(xl, 1)
        a, b = accounting.memory_line(xl)
        step = accounting.training_step_flops(xl, TRAINING_BATCH)
        seconds = accounting.training_seconds(xl, steps=TRAINING_STEPS, batch_size=TRAINING_BATCH,
                                              peak_flops=A100_FLOAT32_PEAK, mfu=MFU)
        columns[reading] = [
            accounting.parameter_counts(xl)["total"], memory["parameters"], memory["gradients"],
            memory["optimizer state (m, v)"], memory["activations"], memory["total"], a, b,
            accounting.largest_batch_size(xl, MEMORY_BYTES), accounting.adamw_step_flops(xl),
            accounting.forward_flops(xl)["total"], step, TRAINING_STEPS * step, seconds, seconds / 86_400,
        ]
    k = {"handout": 16, "swiglu": 24}  # activation elements per block and token that scale with d: 8·d + (2 or 4)·4·d
    params = {"handout": "2·V·d + L·(12·d² + 2·d) + d", "swiglu": "2·V·d + L·(16·d² + 2·d) + d"}
    forward = {"handout": "L·(24·T·d² + 4·T²·d) + 2·T·d·V", "swiglu": "L·(32·T·d² + 4·T²·d) + 2·T·d·V"}
    formulas = {reading: [
        params[reading], "4·P", "4·P", "8·P (m and v)",
        f"4·[L·({k[reading]}·B·T·d + 2·B·h·T²) + B·T·d + 2·B·T·V]", "16·P + activations",
        f"4·[L·({k[reading]}·T·d + 2·h·T²) + T·d + 2·T·V]", "16·P", "floor((80·10⁹ − b) / a)", "14·P",
        forward[reading], "3 · 1,024 · forward + 14·P", "400,000 · step", "total / (0.5 · 19.5·10¹²)",
        "seconds / 86,400",
    ] for reading in FFN_READINGS}
    labels = [
        ("(a)", "parameters P", "parameters"), ("(a)", "parameter memory", "bytes"), ("(a)", "gradients", "bytes"),
        ("(a)", "optimizer state", "bytes"), ("(a)", "activations at batch 1", "bytes"),
        ("(a)", "total at batch 1", "bytes"), ("(b)", "a (bytes per sequence in the batch)", "bytes"),
        ("(b)", "b (bytes independent of the batch)", "bytes"), ("(b)", "largest batch in 80 GB", "sequences"),
        ("(c)", "AdamW step FLOPs", "FLOPs"), ("(d)", "forward FLOPs of one sequence", "FLOPs"),
        ("(d)", "training step FLOPs at batch 1,024", "FLOPs"), ("(d)", "training FLOPs, 400K steps", "FLOPs"),
        ("(d)", "training time on one A100 at 50% MFU", "seconds"), ("(d)", "training time in days", "days"),
    ]
    table = pd.DataFrame(labels, columns=["part", "quantity", "unit"])
    for reading in FFN_READINGS:
        table[f"{reading}_formula"] = formulas[reading]
        table[f"{reading}_value"] = [float(v) for v in columns[reading]]  # training FLOPs pass int64's range
    return table


# name -> its table, given {label: path} of the text samples it reads (only unicode2 reads any)
PROBLEMS: dict[str, Callable[[Mapping[str, str]], pd.DataFrame]] = {
    "unicode1": lambda files: unicode1(),
    "unicode2": lambda files: unicode2(_text_samples(files)),
    "transformer_accounting": lambda files: transformer_accounting(),
    "learning_rate_tuning": lambda files: _toy_sgd(),
    "adamw_accounting": lambda files: adamw_accounting(),
}


def solve_problem(name: str, files: Mapping[str, str | os.PathLike], out_path: str | os.PathLike) -> pd.DataFrame:
    """Run one written problem and save its table as CSV (`files`: {label: path} of text samples it reads)."""
    if name not in PROBLEMS:
        raise KeyError(f"unknown problem {name!r} (known: {', '.join(PROBLEMS)})")
    table = PROBLEMS[name](files)
    with atomic_path(out_path) as tmp:
        table.to_csv(tmp, index=False)
    return table
