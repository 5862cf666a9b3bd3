"""The written problems' code: the toy SGD problem (§4.2), the Unicode demonstrations (§2) and the problem tables
the `solve_problem` rule writes."""

from __future__ import annotations

import itertools
import math

import pandas as pd
import pytest
import torch

from cs336lm.problems.answers import PROBLEMS, solve_problem
from cs336lm.problems.toy_sgd import DecayingSGD, learning_rate_tuning, toy_losses
from cs336lm.problems.unicode import NOT_UTF8, decode_utf8_bytes_to_str_wrong, encoded_lengths, unicode1, unicode2


def test_decaying_sgd_steps_by_lr_over_sqrt_t_plus_one():
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = DecayingSGD([w], lr=0.5)
    for t, expected in enumerate(([0.5, -1.0], [0.5 - 0.5 / math.sqrt(2) * 0.5, -1.0 + 0.5 / math.sqrt(2)])):
        optimizer.zero_grad()
        (w**2).sum().div(2).backward()  # gradient = w
        optimizer.step()
        assert w.tolist() == pytest.approx(expected), t


def test_toy_sgd_lr_1e1_decreases_and_1e3_diverges():
    slow, fast, diverged = toy_losses(1e1), toy_losses(1e2), toy_losses(1e3)
    assert slow[0] == fast[0] == diverged[0] == pytest.approx(26.2714, abs=1e-3)  # the same seeded weights
    assert all(b < a for a, b in itertools.pairwise(slow))
    assert fast[-1] < 1e-10 < slow[-1]
    assert all(b > a for a, b in itertools.pairwise(diverged)) and diverged[-1] > 1e15


def test_learning_rate_tuning_table():
    table = learning_rate_tuning(lrs=(1.0, 1e3), steps=4)
    assert list(table.columns) == ["lr", "step", "loss"] and len(table) == 8
    assert table[table.lr == 1.0].loss.tolist() == pytest.approx(toy_losses(1.0, steps=4))


def test_unicode1_shows_repr_against_printed_form():
    table = unicode1().set_index("expression")["value (repr)"]
    assert table["chr(0)"] == repr("\x00")
    assert table["repr(chr(0))"] == repr(repr("\x00"))
    assert table['"this is a test" + chr(0) + "string"'] == repr("this is a test\x00string")


def test_utf8_is_shortest_on_english_and_has_no_zero_bytes():
    lengths = encoded_lengths({"english": "Once upon a time there was a dog."}).iloc[0]
    assert lengths["utf8_bytes"] == 33 < lengths["utf16_bytes"] == 66 < lengths["utf32_bytes"] == 132
    assert lengths["utf8_zero_bytes"] == 0 and lengths["utf16_zero_bytes"] == 33


def test_wrong_decoder_fails_on_multibyte_characters():
    assert decode_utf8_bytes_to_str_wrong(b"hello") == "hello"
    with pytest.raises(UnicodeDecodeError):
        decode_utf8_bytes_to_str_wrong("héllo".encode())
    for data in NOT_UTF8:
        assert len(data) == 2
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
    table = unicode2({"story": "Once upon a time."})
    assert table.part.tolist() == ["(a)", "(a)", "(b)", "(b)", "(c)", "(c)", "(c)"]
    assert table.result.iloc[3].startswith("UnicodeDecodeError") and table.result.iloc[2] == "decodes to 'hello'"
    assert table.utf8_bytes.iloc[0] == len("hello! こんにちは!".encode()) == 23


def test_solve_problem_writes_each_table(tmp_path):
    sample = tmp_path / "valid.txt"
    sample.write_text("Once upon a time.<|endoftext|>\n" * 10)
    for name in PROBLEMS:
        out = tmp_path / f"{name}.csv"
        table = solve_problem(name, {"tinystories": sample}, out)
        assert len(pd.read_csv(out)) == len(table) > 0
    with pytest.raises(KeyError, match="unknown problem 'unicode3'"):
        solve_problem("unicode3", {}, tmp_path / "x.csv")


# GPT-2 XL as handout §3.6 lists it
V, T, L, D, H, D_FF = 50_257, 1_024, 48, 1_600, 25, 6_400


def test_transformer_accounting_by_hand():
    table = PROBLEMS["transformer_accounting"]({})
    xl = table[(table.model == "GPT-2 XL") & (table.context_length == T)]
    assert (xl.vocab_size.iloc[0], xl.num_layers.iloc[0], xl.d_model.iloc[0], xl.num_heads.iloc[0],
            xl.d_ff.iloc[0]) == (V, L, D, H, D_FF)
    # (a) embeddings + LM head, per block attention 4d² + SwiGLU 3·d·d_ff + two RMSNorm gains, final RMSNorm
    params = 2 * V * D + L * (4 * D * D + 3 * D * D_FF + 2 * D) + D
    assert params == 2_127_057_600
    value = xl.set_index(["quantity", "component"])["value"]
    assert value["parameters", "total"] == params
    assert value["float32 bytes to load", "total"] == 4 * params == 8_508_230_400
    # (b) per block: QKV 3·2·T·d², QKᵀ 2·T²·d, AV 2·T²·d, output 2·T·d², feed-forward 3·2·T·d·d_ff; LM head 2·T·d·V
    forward = L * (3 * 2 * T * D * D + 2 * T * T * D + 2 * T * T * D + 2 * T * D * D + 3 * 2 * T * D * D_FF) \
        + 2 * T * D * V
    assert value["forward FLOPs", "total"] == forward == 4_513_336_524_800
    assert value["forward FLOPs", "feed-forward"] / forward == pytest.approx(0.6691, abs=1e-4)
    # (d) GPT-2 small with d_ff = 4 · 768
    small = table[(table.model == "GPT-2 small") & (table.quantity == "forward FLOPs")].set_index("component")
    d = 768
    small_forward = 12 * (8 * T * d * d + 4 * T * T * d + 6 * T * d * 4 * d) + 2 * T * d * V
    assert small.loc["total", "value"] == small_forward
    assert small.loc["LM head", "share"] == pytest.approx(2 * T * d * V / small_forward)
    # (e) context 16,384
    t = 16_384
    long = table[(table.context_length == t) & (table.quantity == "forward FLOPs")].set_index("component")
    assert long.loc["total", "value"] == L * (8 * t * D * D + 4 * t * t * D + 6 * t * D * D_FF) + 2 * t * D * V


def test_adamw_accounting_by_hand():
    table = PROBLEMS["adamw_accounting"]({}).set_index("quantity")
    for reading, ffn_matrices in (("handout", 2), ("swiglu", 3)):
        value = table[f"{reading}_value"]
        d_ff = 4 * D  # "Assume d_ff = 4 × d_model"
        P = 2 * V * D + L * (4 * D * D + ffn_matrices * D * d_ff + 2 * D) + D
        assert value["parameters P"] == P
        assert value["b (bytes independent of the batch)"] == 4 * P + 4 * P + 8 * P  # weights, gradients, m and v
        # per block: 2 RMSNorms, QKV, QᵀK, softmax, weighted sum, output projection, then W1, SiLU (+ W3 and the
        # product for SwiGLU), W2; final RMSNorm, logits, cross-entropy
        ffn = (2 if ffn_matrices == 2 else 4) * T * d_ff + T * D
        per_sequence = L * (2 * T * D + 3 * T * D + 2 * H * T * T + 2 * T * D + ffn) + T * D + 2 * T * V
        a = 4 * per_sequence
        assert value["a (bytes per sequence in the batch)"] == a
        assert value["largest batch in 80 GB"] == (80e9 - 16 * P) // a
        assert value["AdamW step FLOPs"] == 14 * P
        forward = L * (8 * T * D * D + 4 * T * T * D + 2 * ffn_matrices * T * D * d_ff) + 2 * T * D * V
        assert value["forward FLOPs of one sequence"] == forward
        step = 3 * 1024 * forward + 14 * P  # backward = 2 × forward
        days = 400_000 * step / (0.5 * 19.5e12) / 86_400
        assert value["training time in days"] == pytest.approx(days)
    assert table.loc["largest batch in 80 GB", "handout_value"] == 3
    assert table.loc["training time in days", "handout_value"] == pytest.approx(5115.2, abs=0.1)
    assert table.loc["training time in days", "swiglu_value"] == pytest.approx(6583.6, abs=0.1)


def test_learning_rate_tuning_by_hand():
    # loss = mean(w²) over 100 entries, so grad = w / 50 and the t-th step scales w by 1 − lr / (50·sqrt(t + 1))
    table = PROBLEMS["learning_rate_tuning"]({})
    assert sorted(set(table.lr)) == [1.0, 10.0, 100.0, 1000.0] and set(table.step) == set(range(10))
    for lr, rows in table.groupby("lr"):
        losses = rows.sort_values("step").loss.tolist()
        expected = [losses[0]]
        for t in range(9):
            expected.append(expected[-1] * (1 - lr / (50 * math.sqrt(t + 1))) ** 2)
        assert losses == pytest.approx(expected, rel=1e-4), lr


def _evaluate(formula: str, **symbols: float) -> float:
    """A formula as the report prints it (·, ², [ ] as brackets) evaluated at the given symbols."""
    expression = formula.replace("·", "*").replace("²", "**2").replace("[", "(").replace("]", ")")
    expression = expression.replace("(m and v)", "").strip()
    return eval(expression, {"__builtins__": {}}, symbols)  # noqa: S307 (our own formula strings)


def test_adamw_formulas_as_printed_give_the_values():
    # the printed expressions, evaluated at GPT-2 XL and batch 1, are the numbers beside them
    table = PROBLEMS["adamw_accounting"]({}).set_index("quantity")
    for reading in ("handout", "swiglu"):
        formula, value = table[f"{reading}_formula"], table[f"{reading}_value"]
        P = _evaluate(formula["parameters P"], V=V, L=L, d=D)
        assert P == value["parameters P"]
        for quantity in ("parameter memory", "gradients", "optimizer state", "b (bytes independent of the batch)"):
            assert _evaluate(formula[quantity], P=P) == value[quantity], quantity
        at_batch_1 = dict(V=V, T=T, L=L, d=D, h=H, B=1)
        assert _evaluate(formula["activations at batch 1"], **at_batch_1) == value["activations at batch 1"]
        assert _evaluate(formula["a (bytes per sequence in the batch)"], **at_batch_1) == \
            value["a (bytes per sequence in the batch)"]
        assert value["total at batch 1"] == 16 * P + value["activations at batch 1"]
        assert _evaluate(formula["forward FLOPs of one sequence"], **at_batch_1) == \
            value["forward FLOPs of one sequence"]
    # the handout's reading by hand: 16·d activation elements per block and token (2 norms, QKV, weighted sum,
    # output projection, W1 and SiLU at 4·d each, W2)
    assert table.loc["a (bytes per sequence in the batch)", "handout_value"] == \
        4 * (L * (16 * T * D + 2 * H * T * T) + T * D + 2 * T * V) == 15_517_753_344


def test_transformer_accounting_shares_by_hand():
    # (d) and (e): each component's share of the forward FLOPs, computed from §3.6's 2mnp rule by hand
    table = PROBLEMS["transformer_accounting"]({})
    sizes = {"GPT-2 small": (12, 768, 1024), "GPT-2 medium": (24, 1024, 1024), "GPT-2 large": (36, 1280, 1024),
             "GPT-2 XL": (48, 1600, 1024), "GPT-2 XL, long": (48, 1600, 16_384)}
    for name, (layers, d, t) in sizes.items():
        parts = {"Q, K, V projections": layers * 6 * t * d * d, "attention scores QKᵀ": layers * 2 * t * t * d,
                 "attention-weighted values AV": layers * 2 * t * t * d,
                 "attention output projection": layers * 2 * t * d * d,
                 "feed-forward": layers * 6 * t * d * 4 * d, "LM head": 2 * t * d * V}
        total = sum(parts.values())
        rows = table[(table.model == name.removesuffix(", long")) & (table.context_length == t) &
                     (table.quantity == "forward FLOPs")].set_index("component")
        assert rows.loc["total", "value"] == total, name
        for component, flops in parts.items():
            assert rows.loc[component, "share"] == pytest.approx(flops / total), (name, component)
    xl = table[(table.model == "GPT-2 XL") & (table.quantity == "forward FLOPs") & (table.component == "total")]
    assert xl.set_index("context_length").value[16_384] / xl.set_index("context_length").value[1024] == \
        pytest.approx(33.129, abs=1e-3)
