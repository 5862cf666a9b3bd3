"""The written problems' code: the toy SGD problem (§4.2), the Unicode demonstrations (§2) and the problem tables
the `solve_problem` rule writes."""

from __future__ import annotations

import itertools
import math

import pandas as pd
import pytest
import torch

from cs336lm.lm import accounting
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


def test_adamw_table_quotes_the_accounting_module():
    table = PROBLEMS["adamw_accounting"]({}).set_index("quantity")["value"]
    xl = accounting.gpt2_config("GPT-2 XL")
    assert table["largest batch in 80 GB"] == accounting.largest_batch_size(xl, 80e9) == 3
    assert table["AdamW step FLOPs"] == 14 * 1_640_452_800
    assert table["training time in days"] == pytest.approx(table["training time, 400K steps on one H100 at 50% MFU"]
                                                           / 24)
