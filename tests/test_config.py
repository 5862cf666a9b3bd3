"""cs336lm.config: dotted keys, closest-key suggestions, enum and range validation, YAML's string `1e-3`, and
iterations derived from the token budget; the module imports without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cs336lm.config import ConfigError, ModelConfig, OptimConfig, RunConfig


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
    ("model.attention_backend", "flash", "is not one of auto, reference, sdpa"),
    ("optim.implementation", "apex", "is not one of auto, reference, foreach, fused"),
    ("train.dtype", "float16", "is not one of auto, float32, bfloat16"),
    ("train.implementation", "turbo", "is not one of auto, fast, reference"),
    ("train.compile", "yes", "train.compile = 'yes' must be bool, not str"),
    ("train.eval_every_tokens", 0, "must be > 0"),
    ("train.final_eval_tokens", -1, "must be >= 0"),
    ("train.eval_interval", 500, "was replaced by train.eval_every_tokens"),
    ("train.device", "tpu", "is not one of auto, cpu, cuda, cuda:N, mps"),
    ("model.num_heads", 7, "not divisible"),
    ("optim.lr_min", 1.0, "is above optim.lr_max"),
    ("train.divergence_factor", 1.0, "must be > 1"),
    ("train.batch_size", True, "must be int, not bool"),
    ("optim.lr_max", "1e-3", "YAML reads 1e-3 as a string: write 1.0e-3"),
    ("train.device", "cuda:x", "train.device = 'cuda:x' is not one of auto, cpu, cuda, cuda:N"),
    ("train.device", "cuda:-1", "train.device = 'cuda:-1' is not one of"),
    ("train.device", "cuda:", "train.device = 'cuda:' is not one of"),
    ("train.token_budget", 100, "less than one step"),
    ("model.ffn", "gelu", "model.ffn = 'gelu' is not one of swiglu, silu, relu2"),
    ("model.head", "shared", "model.head = 'shared' is not one of untied, tied"),
    ("model.qk_norm", "layernorm", "model.qk_norm = 'layernorm' is not one of none, rmsnorm"),
    ("model.logit_softcap", -30.0, "model.logit_softcap = -30.0 must be >= 0"),
    ("model.logit_softcap", float("inf"), "model.logit_softcap = inf is not a finite number"),
    ("train.z_loss", -1e-4, "train.z_loss = -0.0001 must be >= 0"),
    ("train.z_loss", "1e-4", "YAML reads 1e-4 as a string: write 1.0e-4"),
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


@pytest.mark.parametrize("yaml_value", [".nan", ".inf", "-.inf", "nan", "inf", "'NaN'", "1.0e+999"])
@pytest.mark.parametrize("key", ["optim.lr_max", "model.rope_theta", "train.divergence_factor", "train.token_budget"])
def test_non_finite_numbers_are_rejected_with_the_key_named(key, yaml_value):
    value = yaml.safe_load(f"x: {yaml_value}")["x"]
    with pytest.raises(ConfigError, match=rf"^{key} = .* is not a finite number$"):
        RunConfig.from_flat({key: value})


def test_non_finite_numbers_are_rejected_when_built_in_python_too():
    with pytest.raises(ConfigError, match=r"optim.lr_min = nan is not a finite number"):
        OptimConfig(lr_min=float("nan"))


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_well_formed_devices_are_accepted(device):
    assert RunConfig.from_flat({"train.device": device}).train.device == device


@pytest.mark.parametrize(("written", "hint"), [
    ("3e-4", "YAML reads 3e-4 as a string: write 3.0e-4"),
    ("-2E-3", "YAML reads -2E-3 as a string: write -2.0e-3"),
    ("1e5", "YAML reads 1e5 as a string: write 1.0e+5"),  # PyYAML also needs the exponent's sign
    ("1.5e3", "YAML reads 1.5e3 as a string: write 1.5e+3"),
    ("'0.001'", "write 0.001 without quotes"),
])
def test_yaml_hint_echoes_the_users_value_in_a_form_yaml_reads_as_a_number(written, hint):
    value = yaml.safe_load(f"lr_max: {written}")["lr_max"]
    assert isinstance(value, str)
    with pytest.raises(ConfigError) as error:
        RunConfig.from_flat({"optim.lr_max": value})
    assert f"optim.lr_max = {value!r} must be float, not str ({hint})" == str(error.value)
    suggested = hint.rpartition("write ")[2].removesuffix(" without quotes")
    assert yaml.safe_load(f"lr_max: {suggested}")["lr_max"] == float(value)


def test_errors_can_name_keys_by_where_the_user_wrote_them():
    where = {"optim.lr_min": "defaults.optim.lr_min", "optim.lr_max": "experiments.lr_sweep.grid.optim.lr_max"}
    with pytest.raises(ConfigError) as error:
        RunConfig.from_flat({"optim.lr_min": 1e-3, "optim.lr_max": 1e-4})
    located = error.value.located(where.__getitem__)
    assert str(located) == ("defaults.optim.lr_min = 0.001 is above experiments.lr_sweep.grid.optim.lr_max = 0.0001")
    assert located.keys == ("defaults.optim.lr_min", "experiments.lr_sweep.grid.optim.lr_max")
    with pytest.raises(ConfigError) as error:
        RunConfig.from_flat({"model.d_ff": 96, "model.d_f": 1})
    assert str(error.value.located(lambda key: f"experiments.x.variants.v.{key}")) == (
        "unknown config key 'experiments.x.variants.v.model.d_f'; did you mean 'model.d_ff'?")
