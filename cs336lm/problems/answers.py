"""The handout's written problems, answered by code that runs in the workflow (rule `solve_problem`): each writes
one table, `problems/<name>.csv`, that the writeup quotes. §2 unicode1/unicode2, §3.6 transformer_accounting,
§4.2 learning_rate_tuning, §4.3 adamw_accounting."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping

import pandas as pd

from cs336lm.atomic import atomic_path
from cs336lm.lm import accounting
from cs336lm.problems.unicode import unicode1, unicode2

SAMPLE_BYTES = 1 << 16  # text sample per corpus for the encoding-length comparison

# The handout's setting for adamwAccounting (d): GPT-2 XL, 400K steps of batch 1024 on one H100 at 50% MFU, whose
# peak the handout gives as 495 TFLOP/s for "float32" (TF32 tensor cores, dense).
TRAINING_STEPS, TRAINING_BATCH, H100_PEAK_FLOPS, MFU = 400_000, 1024, 495e12, 0.5
MEMORY_BYTES = 80e9  # "80GB" as decimal gigabytes
LONG_CONTEXT = 16_384


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
    size at context 1,024 and GPT-2 XL at 16,384."""
    models = [(name, 1024) for name in accounting.GPT2_SHAPES] + [("GPT-2 XL", LONG_CONTEXT)]
    rows = []
    for name, context in models:
        config = accounting.gpt2_config(name, context_length=context)
        base = {"model": name, "context_length": context, "num_layers": config.num_layers,
                "d_model": config.d_model, "num_heads": config.num_heads, "d_ff": config.d_ff}
        params = accounting.parameter_counts(config)
        flops = accounting.forward_flops(config)
        rows += [{**base, "quantity": "parameters", "component": k, "value": v, "share": v / params["total"]}
                 for k, v in params.items()]
        rows.append({**base, "quantity": "float32 bytes to load", "component": "total",
                     "value": accounting.FLOAT32_BYTES * params["total"], "share": 1.0})
        wide = dataclasses.replace(config, d_ff=4 * config.d_model)  # GPT-2's own feed-forward width
        rows.append({**base, "quantity": "parameters with d_ff = 4·d_model", "component": "total",
                     "value": accounting.parameter_counts(wide)["total"], "share": 1.0})
        rows += [{**base, "quantity": "forward FLOPs", "component": k, "value": v, "share": v / flops["total"]}
                 for k, v in flops.items()]
    return pd.DataFrame(rows)


def adamw_accounting() -> pd.DataFrame:
    """Peak memory of AdamW training by component (formula and GPT-2 XL value at batch 1), the a·B + b line and
    the largest batch in 80 GB, the FLOPs of one AdamW step, and the handout's training-time estimate."""
    xl = accounting.gpt2_config("GPT-2 XL")
    P = accounting.parameter_counts(xl)["total"]
    memory = accounting.adamw_memory(xl, 1)
    a, b = accounting.memory_line(xl)
    step = accounting.training_step_flops(xl, TRAINING_BATCH)
    seconds = accounting.training_seconds(xl, steps=TRAINING_STEPS, batch_size=TRAINING_BATCH,
                                          peak_flops=H100_PEAK_FLOPS, mfu=MFU)
    activations = "4·[L·(8·B·T·d + 4·B·T·d_ff + 2·B·h·T²) + B·T·d + 2·B·T·V]"
    rows = [
        ("(a)", "parameters P", "2·V·d + L·(4·d² + 3·d·d_ff + 2·d) + d", P, "parameters"),
        ("(a)", "parameters", "4·P", memory["parameters"], "bytes"),
        ("(a)", "gradients", "4·P", memory["gradients"], "bytes"),
        ("(a)", "optimizer state (m, v)", "8·P", memory["optimizer state (m, v)"], "bytes"),
        ("(a)", "activations at batch 1", activations, memory["activations"], "bytes"),
        ("(a)", "total at batch 1", "16·P + activations", memory["total"], "bytes"),
        ("(b)", "a (bytes per sequence in the batch)", "activations / B", a, "bytes"),
        ("(b)", "b (bytes independent of the batch)", "16·P", b, "bytes"),
        ("(b)", "largest batch in 80 GB", "floor((80·10⁹ − b) / a)",
         accounting.largest_batch_size(xl, MEMORY_BYTES), "sequences"),
        ("(c)", "AdamW step FLOPs", "14·P", accounting.adamw_step_flops(xl), "FLOPs"),
        ("(d)", "training step FLOPs at batch 1024", "3 · forward FLOPs · B + 14·P", step, "FLOPs"),
        ("(d)", "training time, 400K steps on one H100 at 50% MFU", "400K · step FLOPs / (0.5 · 495·10¹²)",
         seconds / 3600, "hours"),
        ("(d)", "training time in days", "hours / 24", seconds / 86_400, "days"),
    ]
    return pd.DataFrame(rows, columns=["part", "quantity", "formula", "value", "unit"])


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
