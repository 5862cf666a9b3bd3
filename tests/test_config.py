"""cs336lm.config: dotted keys, closest-key suggestions, enum and range validation, YAML's string `1e-3`, and
iterations derived from the token budget; the module imports without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cs336lm.config import ConfigError, ModelConfig, RunConfig


def test_from_flat_overrides_defaults_and_round_trips():
    cfg = RunConfig.from_flat({"optim.lr_max": 3e-3, "model.norm": "none", "train.batch_size": 64})
    assert cfg.optim.lr_max == 3e-3 and cfg.model.norm == "none" and cfg.train.batch_size == 64
    assert cfg.model.d_model == ModelConfig().d_model
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert RunConfig.from_flat(cfg.to_flat()) == cfg
    assert RunConfig.from_flat({"train.seed": 1}, base=cfg).optim.lr_max == 3e-3


def test_unknown_key_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"unknown config key 'optim.lr_mx'; did you mean 'optim.lr_max'\?"):
        RunConfig.from_flat({"optim.lr_mx": 1e-3})
    with pytest.raises(ConfigError, match="unknown config key 'lr_max'"):
        RunConfig.from_flat({"lr_max": 1e-3})
    with pytest.raises(ConfigError, match="unknown config section 'modle'; did you mean 'model'"):
        RunConfig.from_dict({"modle": {}})


@pytest.mark.parametrize(("key", "value", "message"), [
    ("model.norm", "layernorm", "model.norm = 'layernorm' is not one of rmsnorm, none"),
    ("model.attention_backend", "flash", "is not one of reference, sdpa"),
    ("optim.implementation", "apex", "is not one of reference, foreach, fused"),
    ("train.dtype", "float16", "is not one of float32, bfloat16"),
    ("train.device", "tpu", "is not one of auto, cpu, cuda, cuda:N, mps"),
    ("model.num_heads", 7, "not divisible"),
    ("optim.lr_min", 1.0, "is above optim.lr_max"),
    ("train.divergence_factor", 1.0, "must be > 1"),
    ("train.batch_size", True, "must be int, not bool"),
    ("optim.lr_max", "1e-3", "YAML reads 1e-3 as a string"),
    ("train.token_budget", 100, "less than one step"),
])
def test_bad_values_are_rejected_with_the_key_named(key, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        RunConfig.from_flat({key: value})


def test_iterations_derive_from_the_token_budget():
    cfg = RunConfig.from_flat({"train.token_budget": 327_680_000, "train.batch_size": 32,
                               "model.context_length": 256, "optim.warmup_fraction": 0.02})
    assert cfg.tokens_per_step == 32 * 256 and cfg.num_iterations == 40_000 and cfg.warmup_iters == 800
    assert RunConfig.from_flat({"train.batch_size": 128}).num_iterations == 10_000
    assert RunConfig.from_flat({"train.seed": 3.0}).train.seed == 3  # integral floats from YAML are ints


def test_config_module_does_not_import_torch():
    code = "import sys, cs336lm.config; assert 'torch' not in sys.modules, 'config imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)
