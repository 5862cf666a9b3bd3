"""cs336lm.lm.accounting against hand counts, count_parameters of real models, and torch's own FLOP counter."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cs336lm.config import ModelConfig
from cs336lm.lm import accounting
from cs336lm.lm.model import TransformerLM, count_parameters

TINY = ModelConfig(vocab_size=97, context_length=16, d_model=32, num_layers=2, num_heads=4, d_ff=80)


def test_course_model_parameters_by_hand():
    d, L, V, d_ff = 512, 4, 10_000, 1344
    by_hand = 2 * V * d + L * (4 * d * d + 3 * d * d_ff + 2 * d) + d
    assert by_hand == 22_696_448
    assert accounting.parameter_counts(ModelConfig())["total"] == by_hand


def test_gpt2_xl_by_hand():
    config = accounting.gpt2_config("GPT-2 XL")
    assert (config.d_ff, config.vocab_size, config.context_length) == (6400, 50_257, 1024)
    assert accounting.parameter_counts(config)["total"] == 2_127_057_600
    d, L, T, V = 1600, 48, 1024, 50_257
    forward = L * (8 * T * d * d + 4 * T * T * d + 6 * T * d * 6400) + 2 * T * d * V
    assert accounting.forward_flops(config)["total"] == forward == 4_513_336_524_800
    long = accounting.forward_flops(accounting.gpt2_config("GPT-2 XL", context_length=16_384))
    assert long["total"] == L * (8 * 16_384 * d * d + 4 * 16_384**2 * d + 6 * 16_384 * d * 6400) + 2 * 16_384 * d * V
    silu = accounting.gpt2_config("GPT-2 XL", ffn="silu")
    assert accounting.parameter_counts(silu)["total"] == 2 * V * d + L * (12 * d * d + 2 * d) + d


@pytest.mark.parametrize("name", list(accounting.GPT2_SHAPES))
def test_parameter_counts_equal_a_real_model(name):
    config = accounting.gpt2_config(name)
    with torch.device("meta"):  # shapes without memory: GPT-2 XL has 1.6 B parameters
        model = TransformerLM(config)
    assert accounting.parameter_counts(config)["total"] == count_parameters(model)["total"]


@pytest.mark.parametrize("variant", [{}, {"ffn": "silu", "d_ff": 120}, {"norm": "none"}])
def test_parameter_counts_follow_the_ablations(variant):
    config = ModelConfig(**{**TINY.__dict__, **variant})
    assert accounting.parameter_counts(config)["total"] == count_parameters(TransformerLM(config))["total"]


@pytest.mark.parametrize("variant", [{}, {"ffn": "silu", "d_ff": 120}])
def test_forward_flops_equal_torch_flop_counter(variant):
    # The from-scratch attention: torch's counter books F.scaled_dot_product_attention by its own convention.
    config = ModelConfig(**{**TINY.__dict__, **variant, "attention_backend": "reference"})
    model = TransformerLM(config)
    with FlopCounterMode(display=False) as counter:
        model(torch.randint(0, config.vocab_size, (3, config.context_length)))
    assert accounting.forward_flops(config, batch_size=3)["total"] == counter.get_total_flops()


def test_shares_move_as_the_handout_expects():
    shares = {}
    for name in accounting.GPT2_SHAPES:
        flops = accounting.forward_flops(accounting.gpt2_config(name))
        shares[name] = {k: v / flops["total"] for k, v in flops.items() if k != "total"}
    small, xl = shares["GPT-2 small"], shares["GPT-2 XL"]
    assert xl["feed-forward"] > small["feed-forward"] and xl["LM head"] < small["LM head"]
    long = accounting.forward_flops(accounting.gpt2_config("GPT-2 XL", 16_384))
    assert (long["attention scores QKᵀ"] + long["attention-weighted values AV"]) / long["total"] > 0.5


def test_activations_by_hand():
    B, T, d, L, h, d_ff, V = 2, 16, 32, 2, 4, 80, 97
    by_hand = L * (8 * B * T * d + 4 * B * T * d_ff + 2 * B * h * T * T) + B * T * d + 2 * B * T * V
    assert accounting.activation_elements(TINY, B)["total"] == by_hand
    two_matrices = L * (8 * B * T * d + 2 * B * T * d_ff + 2 * B * h * T * T) + B * T * d + 2 * B * T * V
    assert accounting.activation_elements(dataclasses.replace(TINY, ffn="silu"), B)["total"] == two_matrices
    no_norms = L * (6 * B * T * d + 4 * B * T * d_ff + 2 * B * h * T * T) + 2 * B * T * V
    assert accounting.activation_elements(dataclasses.replace(TINY, norm="none"), B)["total"] == no_norms


def test_memory_line_and_largest_batch():
    config = accounting.gpt2_config("GPT-2 XL")
    a, b = accounting.memory_line(config)
    assert b == 16 * 2_127_057_600  # parameters, gradients, m and v in float32
    assert accounting.adamw_memory(config, 5)["total"] == 5 * a + b
    largest = accounting.largest_batch_size(config, 80e9)
    assert accounting.adamw_memory(config, largest)["total"] <= 80e9 < accounting.adamw_memory(config, largest + 1)[
        "total"]


def test_training_time_of_the_handout_setting():
    config = accounting.gpt2_config("GPT-2 XL")
    assert accounting.adamw_step_flops(config) == 14 * 2_127_057_600
    step = 3 * 1024 * 4_513_336_524_800 + 14 * 2_127_057_600
    assert accounting.training_step_flops(config, 1024) == step
    seconds = accounting.training_seconds(config, steps=400_000, batch_size=1024, peak_flops=19.5e12, mfu=0.5)
    assert seconds == pytest.approx(400_000 * step / 9.75e12)


def test_flops_per_token_is_three_forwards_per_token():
    config = ModelConfig()
    assert accounting.flops_per_token(config) == 3 * accounting.forward_flops(config)["total"] / 256
