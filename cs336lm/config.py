"""Run configuration: torch-free dataclasses for the model, optimizer and training loop (handout §3, §4, §7).

Architecture variants are string enums (litgpt style), training length is a token budget, and every run is built
from dotted flat keys (`optim.lr_max`) so that a typo fails when Snakemake builds the DAG, not hours into a job.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message names the key and the value.

    `keys` are the dotted run keys the message names as written (`optim.lr_min`); a caller that knows where the
    user wrote them (a config file's `defaults.optim.lr_min`) names them so with `located`.
    """

    def __init__(self, message: str, *keys: str) -> None:
        super().__init__(message)
        self.keys = keys

    def located(self, where: Callable[[str], str]) -> ConfigError:
        """The same error with each of its keys replaced by `where(key)`, the full path of the user's setting."""
        message = str(self)
        for key in self.keys:
            message = re.sub(rf"(?<![\w.]){re.escape(key)}(?!\w)", lambda _, key=key: where(key), message, count=1)
        return ConfigError(message, *map(where, self.keys))


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key} = {value!r} is not one of {', '.join(choices)}", key)


def _finite(section: str, values: Any) -> None:
    """Every number of a config section is finite: NaN slips through every range check (nan < 0 is False)."""
    for f in dataclasses.fields(values):
        value = getattr(values, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{section}.{f.name} = {value!r} is not a finite number", f"{section}.{f.name}")


def _positive(key: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{key} = {value!r} must be {'>= 0' if allow_zero else '> 0'}", key)


# What `auto` attention is outside a training run (the adapters, sampling) and in training's equal-to-reference
# preset: SDPA, equal to the from-scratch attention to float tolerance (tested) and faster on every device type.
AUTO_ATTENTION_BACKEND = "sdpa"

@dataclass(frozen=True)
class ModelConfig:
    """TransformerLM hyperparameters; defaults are the course TinyStories model (handout §7.2)."""

    vocab_size: int = 10_000
    context_length: int = 256
    d_model: int = 512
    num_layers: int = 4
    num_heads: int = 16
    d_ff: int = 1344
    rope_theta: float = 10_000.0
    rms_eps: float = 1e-5
    norm: str = "rmsnorm"  # rmsnorm | none
    norm_position: str = "pre"  # pre | post
    pos_emb: str = "rope"  # rope | none
    ffn: str = "swiglu"  # swiglu | silu | relu2 (§7.3's ablation, and ReLU² of So et al. 2021, "Primer")
    # Modifications for the leaderboard (§7.5), each off by default; cs336lm.lm.model cites their sources.
    head: str = "untied"  # untied | tied (the LM head is the token embedding matrix)
    qk_norm: str = "none"  # none | rmsnorm (per head, on queries and keys before RoPE)
    logit_softcap: float = 0.0  # cap · tanh(logits / cap); 0 = off
    # auto (from train.implementation) | reference (from scratch) | sdpa (F.scaled_dot_product_attention)
    attention_backend: str = "auto"

    def __post_init__(self) -> None:
        _finite("model", self)
        for key in ("vocab_size", "context_length", "d_model", "num_layers", "num_heads", "d_ff"):
            _positive(f"model.{key}", getattr(self, key))
        _positive("model.rope_theta", self.rope_theta)
        _positive("model.rms_eps", self.rms_eps)
        _choice("model.norm", self.norm, ("rmsnorm", "none"))
        _choice("model.norm_position", self.norm_position, ("pre", "post"))
        _choice("model.pos_emb", self.pos_emb, ("rope", "none"))
        _choice("model.ffn", self.ffn, ("swiglu", "silu", "relu2"))
        _choice("model.head", self.head, ("untied", "tied"))
        _choice("model.qk_norm", self.qk_norm, ("none", "rmsnorm"))
        _positive("model.logit_softcap", self.logit_softcap, allow_zero=True)
        _choice("model.attention_backend", self.attention_backend, ("auto", "reference", "sdpa"))
        if self.d_model % self.num_heads:
            raise ConfigError(f"model.d_model = {self.d_model} is not divisible by model.num_heads = {self.num_heads}",
                              "model.d_model", "model.num_heads")
        if self.pos_emb == "rope" and self.head_dim % 2:
            raise ConfigError(
                f"RoPE needs an even head dimension, but model.d_model / model.num_heads = {self.d_model} / "
                f"{self.num_heads} = {self.head_dim}", "model.d_model", "model.num_heads"
            )

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads


@dataclass(frozen=True)
class OptimConfig:
    """AdamW, cosine schedule with linear warmup, and gradient clipping (handout §4)."""

    lr_max: float = 1e-3
    lr_min: float = 1e-4
    warmup_fraction: float = 0.02  # of all iterations; the cosine then runs to the last iteration
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    grad_clip: float = 1.0  # max global L2 norm; 0 turns clipping off
    # auto (from train.implementation) | reference (our AdamW, per-parameter loop) | foreach (ours, multi-tensor)
    # | fused (torch's)
    implementation: str = "auto"

    def __post_init__(self) -> None:
        _finite("optim", self)
        _positive("optim.lr_max", self.lr_max)
        _positive("optim.lr_min", self.lr_min, allow_zero=True)
        if self.lr_min > self.lr_max:
            raise ConfigError(f"optim.lr_min = {self.lr_min} is above optim.lr_max = {self.lr_max}",
                              "optim.lr_min", "optim.lr_max")
        if not 0 <= self.warmup_fraction < 1:
            raise ConfigError(f"optim.warmup_fraction = {self.warmup_fraction} must be in [0, 1)",
                              "optim.warmup_fraction")
        for key in ("beta1", "beta2"):
            if not 0 <= getattr(self, key) < 1:
                raise ConfigError(f"optim.{key} = {getattr(self, key)} must be in [0, 1)", f"optim.{key}")
        _positive("optim.eps", self.eps)
        _positive("optim.weight_decay", self.weight_decay, allow_zero=True)
        _positive("optim.grad_clip", self.grad_clip, allow_zero=True)
        _choice("optim.implementation", self.implementation, ("auto", "reference", "foreach", "fused"))


@dataclass(frozen=True)
class TrainConfig:
    """The training loop: token budget, batching, evaluation, checkpoints, fast paths and stopping rules."""

    token_budget: int = 327_680_000  # handout §7.2: batch × steps × context
    batch_size: int = 128
    seed: int = 0
    device: str = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps
    # auto (the fastest path equal to the reference on this device) | fast | reference; see
    # cs336lm.training.implementation
    implementation: str = "auto"
    # auto (from implementation) | float32 | bfloat16 (autocast for matmuls; master weights stay float32)
    dtype: str = "auto"
    compile: bool | str = field(default="auto", metadata={"kind": bool})  # auto (from implementation) | true | false
    log_interval: int = 10  # steps between metrics lines
    # Validation on the fixed sample at the first step whose tokens reach each multiple of this, and at the end;
    # counted in tokens, so runs with different batch sizes get as many points. 16,384,000 = 500 course steps.
    eval_every_tokens: int = 16_384_000
    eval_batches: int = 20  # batches in the fixed validation sample ...
    eval_batch_size: int = 64  # ... of this many sequences, whatever the training batch size, so runs compare
    final_eval_tokens: int = 0  # the finished run's validation loss over this many tokens; 0 = the whole split
    checkpoint_interval: int = 1000  # steps between progress checkpoints
    checkpoint_minutes: float = 10.0  # ... or minutes, whichever comes first
    # Train for this many seconds (0 = no limit): the lr schedule then runs over the training time, not the steps.
    wall_clock_budget_s: float = 0.0
    divergence_factor: float = 2.0  # see cs336lm.training.divergence for the whole rule
    # z-loss coefficient (§7.5 modification): the training objective adds z_loss · mean(logsumexp(logits)²);
    # validation stays plain cross-entropy. 0 = off.
    z_loss: float = 0.0

    def __post_init__(self) -> None:
        _finite("train", self)
        for key in ("token_budget", "batch_size", "log_interval", "eval_every_tokens", "eval_batches",
                    "eval_batch_size", "checkpoint_interval"):
            _positive(f"train.{key}", getattr(self, key))
        _positive("train.final_eval_tokens", self.final_eval_tokens, allow_zero=True)
        _positive("train.checkpoint_minutes", self.checkpoint_minutes)
        _positive("train.wall_clock_budget_s", self.wall_clock_budget_s, allow_zero=True)
        _positive("train.z_loss", self.z_loss, allow_zero=True)
        if self.divergence_factor <= 1:
            raise ConfigError(f"train.divergence_factor = {self.divergence_factor} must be > 1",
                              "train.divergence_factor")
        _choice("train.implementation", self.implementation, ("auto", "fast", "reference"))
        _choice("train.dtype", self.dtype, ("auto", "float32", "bfloat16"))
        if self.compile not in ("auto", True, False):
            raise ConfigError(f"train.compile = {self.compile!r} is not one of auto, true, false", "train.compile")
        if not re.fullmatch(r"auto|cpu|cuda|cuda:[0-9]+|mps", self.device):
            raise ConfigError(f"train.device = {self.device!r} is not one of auto, cpu, cuda, cuda:N, mps",
                              "train.device")


SECTIONS: dict[str, type] = {"model": ModelConfig, "optim": OptimConfig, "train": TrainConfig}


@dataclass(frozen=True)
class RunConfig:
    """One training run: a model, an optimizer and a training loop."""

    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.tokens_per_step > self.train.token_budget:
            raise ConfigError(
                f"train.token_budget = {self.train.token_budget} is less than one step of "
                f"train.batch_size × model.context_length = {self.tokens_per_step} tokens",
                "train.token_budget", "train.batch_size", "model.context_length"
            )

    @property
    def tokens_per_step(self) -> int:
        return self.train.batch_size * self.model.context_length

    @property
    def num_iterations(self) -> int:
        """Steps derived from the token budget, so runs with different batch sizes see equal tokens."""
        return self.train.token_budget // self.tokens_per_step

    @property
    def warmup_iters(self) -> int:
        return math.floor(self.optim.warmup_fraction * self.num_iterations)

    @classmethod
    def from_flat(cls, flat: dict[str, Any], base: RunConfig | None = None) -> RunConfig:
        """Build from dotted keys such as {"optim.lr_max": 1e-3}, on top of `base` (the defaults if None)."""
        sections = (base or cls()).to_dict()
        for key, value in flat.items():
            section, _, name = key.partition(".")
            if section not in SECTIONS or not name:
                raise _unknown_key(key)
            sections[section][name] = value
        return cls.from_dict(sections)

    @classmethod
    def from_dict(cls, nested: dict[str, dict[str, Any]]) -> RunConfig:
        """Build from {"model": {...}, "optim": {...}, "train": {...}}; missing keys keep their defaults."""
        unknown = set(nested) - set(SECTIONS)
        if unknown:
            key = sorted(unknown)[0]
            raise ConfigError(f"unknown config section {key!r}{_suggest(key, list(SECTIONS))}", key)
        built = {}
        for section, klass in SECTIONS.items():
            values = dict(nested.get(section) or {})
            fields = {f.name: f for f in dataclasses.fields(klass)}
            for name, value in values.items():
                key = f"{section}.{name}"
                if name not in fields:
                    raise _unknown_key(key)
                values[name] = _coerce(key, value, fields[name])
            built[section] = klass(**values)
        return cls(**built)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {section: dataclasses.asdict(getattr(self, section)) for section in SECTIONS}

    def to_flat(self) -> dict[str, Any]:
        return {f"{s}.{k}": v for s, values in self.to_dict().items() for k, v in values.items()}


# Keys that were renamed: the old name gets an error saying what to write instead.
RENAMED = {"train.eval_interval": "train.eval_every_tokens (in tokens: steps × batch_size × context_length)"}


def _unknown_key(key: str) -> ConfigError:
    if key in RENAMED:
        return ConfigError(f"config key {key!r} was replaced by {RENAMED[key]}", key)
    return ConfigError(f"unknown config key {key!r}{_suggest(key, _all_keys())}", key)


def _all_keys() -> list[str]:
    return [f"{s}.{f.name}" for s, klass in SECTIONS.items() for f in dataclasses.fields(klass)]


def _suggest(key: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(key, candidates, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _coerce(key: str, value: Any, f: dataclasses.Field) -> Any:
    """Check a value against its field's type, widening int to float; numbers must be finite, and YAML's `3e-4`
    (a string to PyYAML) gets a hint that echoes the value written the way YAML reads as a number. A field whose
    default is "auto" but whose other values are of another kind (metadata "kind") takes either."""
    if value == "auto" and f.default == "auto":
        return value
    kind = f.metadata.get("kind", type(f.default))
    number = _number(value) if kind in (int, float) else None
    if number is not None and not math.isfinite(number):
        raise ConfigError(f"{key} = {value!r} is not a finite number", key)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    hint = ""
    if isinstance(value, str) and number is not None:
        literal = _yaml_number(value)
        hint = (f" (write {literal} without quotes)" if literal == value.strip()
                else f" (YAML reads {value.strip()} as a string: write {literal})")
    raise ConfigError(f"{key} = {value!r} must be {kind.__name__}, not {type(value).__name__}{hint}", key)


def _number(value: Any) -> float | None:
    """The value as a float if it is a number or a string of one (`3e-4`, `nan`), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _yaml_number(text: str) -> str:
    """`3e-4` -> `3.0e-4`, `1e5` -> `1.0e+5`: YAML 1.1 (PyYAML) reads a float only with a dot and a signed exponent."""
    mantissa, e, exponent = text.strip().lower().partition("e")
    if not e:
        return mantissa
    if "." not in mantissa:
        mantissa += ".0"
    if exponent[:1] not in ("+", "-"):
        exponent = "+" + exponent
    return f"{mantissa}e{exponent}"
