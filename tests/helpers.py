"""Helpers shared by the test modules: the tiny training setup (a learnable Markov corpus, a tiny RunConfig, a run's
output paths), a training child process to interrupt, snakemake runs of the repository's workflow and edits of its
configs, reading numbers back from markdown reports, a byte-level tokenizer and tiny model for decoding, a RoPE
written with complex numbers, and random Unicode text. Pytest fixtures built on them live in tests/conftest.py."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import textwrap
import time
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from cs336lm.config import RunConfig
from cs336lm.lm.model import TransformerLM
from cs336lm.training.metrics import read_metrics
from cs336lm.training.progress import PROGRESS_METRICS

REPO_ROOT = REPO = Path(__file__).resolve().parents[1]


# ---- tiny training runs ------------------------------------------------------------------------------------

VOCAB = 32
TIMING_KEYS = ("elapsed_s", "job_s", "tokens_per_s")


def make_corpus(directory: Path, n: int = 20_000, vocab: int = VOCAB) -> tuple[Path, Path]:
    """A Markov chain next = 3·prev + U{0,1,2} mod vocab: learnable down to ln 3 ≈ 1.10 nats per token."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 3, size=n)
    tokens = np.zeros(n, dtype=np.uint16)
    for i in range(1, n):
        tokens[i] = (int(tokens[i - 1]) * 3 + noise[i]) % vocab
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "train.npy", tokens[: n * 9 // 10])
    np.save(directory / "valid.npy", tokens[n * 9 // 10:])
    return directory / "train.npy", directory / "valid.npy"


def tiny_config(**overrides) -> RunConfig:
    flat = {
        "model.vocab_size": VOCAB, "model.context_length": 16, "model.d_model": 32, "model.num_layers": 2,
        "model.num_heads": 2, "model.d_ff": 64,
        "optim.lr_max": 1e-2, "optim.lr_min": 1e-3, "optim.warmup_fraction": 0.05,
        "train.batch_size": 8, "train.token_budget": 8 * 16 * 120, "train.log_interval": 10,
        "train.eval_every_tokens": 40 * 8 * 16, "train.eval_batches": 2, "train.checkpoint_interval": 20,
        "train.device": "cpu",
    }
    return RunConfig.from_flat({**flat, **overrides})


def outputs(run_dir: Path) -> dict[str, Path]:
    return {"model_path": run_dir / "model.pt", "metrics_path": run_dir / "metrics.jsonl",
            "summary_path": run_dir / "summary.json"}


# ---- a training run in a child process, to interrupt -------------------------------------------------------

OVERRIDES = {"train.token_budget": 8 * 16 * 120, "train.checkpoint_interval": 20}


def start_child(corpus: tuple[Path, Path], run: Path, delay: float = 0.015,
                hold_after: int | None = None) -> subprocess.Popen:
    """The same run in a child process, slowed by `delay` seconds a batch so the test can interrupt it mid-run;
    from batch `hold_after` on, a minute a batch (a run that stays mid-training until the test kills it)."""
    script = textwrap.dedent(f"""
        import itertools, logging, time, torch
        torch.set_num_threads(1)
        logging.basicConfig(level=logging.INFO)
        import cs336lm.training.train as T
        from tests.helpers import tiny_config
        get_batch, batches = T.get_batch, itertools.count(1)
        hold_after = {hold_after!r}
        def slow(*a, **k):
            time.sleep(60 if hold_after is not None and next(batches) > hold_after else {delay})
            return get_batch(*a, **k)
        T.get_batch = slow
        run = {str(run)!r}
        T.train(tiny_config(**{OVERRIDES!r}), {str(corpus[0])!r}, {str(corpus[1])!r}, model_path=run + "/model.pt",
                metrics_path=run + "/metrics.jsonl", summary_path=run + "/summary.json")
    """)
    return subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def wait_for_step(child: subprocess.Popen, run: Path, step: int, timeout: float = 60) -> None:
    partial = run / "progress" / PROGRESS_METRICS
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if partial.exists() and any(r["step"] >= step for r in read_metrics(partial)):
            return
        if child.poll() is not None:
            pytest.fail(f"child ended early with {child.returncode}: {child.stderr.read()[-2000:]}")
        time.sleep(0.02)
    child.kill()
    pytest.fail(f"child did not reach step {step} in {timeout}s")


# ---- memory, measured in a child process -------------------------------------------------------------------

def peak_rss_mb(script: str, *args: str) -> dict[str, float]:
    """Run `script` (Python, sys.argv[1:] = `args`) in a fresh interpreter and return the JSON object its `report()`
    prints; `grown_mb` in it is the peak resident memory of the process (native allocations such as tiktoken's
    included) after the script called `mark()`, above the resident memory at that call. Linux: `mark()` resets the
    kernel's high-water mark (VmHWM) through /proc/self/clear_refs, so what came before (imports, loading) does not
    count."""
    prelude = textwrap.dedent("""
        import json, re, sys
        def _status(key):
            return int(re.search(key + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) / 1024
        def mark():
            global _MARK
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            _MARK = _status("VmRSS")
        def report(**extra):
            print(json.dumps({"grown_mb": _status("VmHWM") - _MARK, **extra}))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script), *args], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the Snakemake workflow -----------------------------------------------------------------------------------

SNAKEFILE = REPO / "Snakefile"
COURSE_CONFIG = REPO / "config.yaml"
TINY_CONFIG = REPO / "tests" / "data" / "tiny_config.yaml"


def snakemake(workdir: Path, *args: str, configfile: Path = TINY_CONFIG, timeout: float = 600
              ) -> subprocess.CompletedProcess:
    """Run snakemake on the repo's Snakefile with `workdir` as working directory (nothing lands in the repo)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(workdir),
               "--configfile", str(configfile), "--cores", "2", *args]
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def planned_jobs(result: subprocess.CompletedProcess) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a dry run lists."""
    jobs, rule = [], None
    for line in output(result).splitlines():
        if match := re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):$", line.strip()):
            rule = match.group(1)
            jobs.append((rule, {}))
        elif line.strip().startswith("wildcards:") and jobs:
            jobs[-1][1].update(pair.split("=", 1) for pair in line.split(":", 1)[1].strip().split(", "))
    return jobs


def write_config(path: Path, edit) -> Path:
    config = yaml.safe_load(TINY_CONFIG.read_text())
    edit(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def set_key(path: str, value):
    """An edit of a loaded config: the value at a `/`-separated key path (dotted keys stay whole)."""
    def edit(config):
        *parents, last = path.split("/")
        node = config
        for key in parents:
            node = node[key]
        node[last] = value
    return edit


# ---- numbers printed in markdown ---------------------------------------------------------------------------

NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+(?:e[-+]?\d+)?")


def markdown_tables(text: str) -> list[tuple[str, list[dict[str, str]]]]:
    """(section heading, rows as {column: cell}) of every markdown table in `text`."""
    tables, heading, lines = [], "", text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("## "):
            heading = line
        elif (line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|(\s*:?-+:?\s*\|)+$", lines[i + 1])
              and not (i > 0 and lines[i - 1].startswith("|"))):
            header, rows = cells(line), []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(header, cells(row), strict=True)))
            tables.append((heading, rows))
    return tables


def cells(line: str) -> list[str]:
    """A table line's cells; a `|` without spaces around it ("<|endoftext|>") is text."""
    return [c.strip() for c in re.split(r"(?<=\s)\|(?=\s)", line.strip()[1:-1])]


def printed_number(cell: str) -> str | None:
    """The number a cell starts with ('39,424 (-0.4%)' -> '39,424', '0.835 s' -> '0.835'), None for text."""
    match = NUMBER.match(cell.replace("**", ""))
    return match.group(0) if match else None


def equals_to_printed_precision(printed: str, value: float) -> bool:
    """`printed` is `value` rounded to the digits it shows: within half a unit of its last digit, and when it
    shows fewer than 3 significant digits, `value` itself has no more (so a printed '2' is not a 2.3)."""
    text = printed.replace(",", "")
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    unit = 10.0 ** (int(exponent or 0) - decimals)
    digits = len(mantissa.replace("-", "").replace("+", "").replace(".", "").lstrip("0"))
    close = abs(float(text) - value) <= unit / 2 * (1 + 1e-9)
    return close and (digits >= 3 or float(f"{value:.3g}") == float(text))


# ---- decoding --------------------------------------------------------------------------------------------------

EOS = 0


class ByteTokenizer:
    """A stand-in for cs336lm.tokenization.Tokenizer: id 0 is <|endoftext|>, ids 1…31 are the letters a…~."""

    def encode(self, text: str) -> list[int]:
        if text == "<|endoftext|>":
            return [EOS]
        return [min(ord(c) - 96, 31) if c.isalpha() else 31 for c in text.lower()]

    vocab = {i: bytes([96 + i]) for i in range(32)}

    def decode(self, ids: list[int]) -> str:
        return "".join(self.vocab[i].decode() for i in ids)  # an id it does not have raises KeyError


def tiny_model(seed: int = 0, **overrides) -> TransformerLM:
    torch.manual_seed(seed)
    return TransformerLM(tiny_config(**overrides).model).eval()


# ---- RoPE ----------------------------------------------------------------------------------------------------

def complex_rope(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """RoPE as multiplication of adjacent pairs, read as complex numbers, by e^{i·p·θ_k} (float64)."""
    d = x.shape[-1]
    freqs = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = positions.to(torch.float64)[..., None] * freqs  # (..., T, d/2)
    pairs = torch.view_as_complex(x.double().reshape(*x.shape[:-1], d // 2, 2).contiguous())
    return torch.view_as_real(pairs * torch.polar(torch.ones_like(angles), angles)).flatten(-2).to(x.dtype)


# ---- random text ---------------------------------------------------------------------------------------------

SPECIALS = ["<|endoftext|>", "<|endoftext|><|endoftext|>"]

_PIECES = [
    " the", "The", " quick", "fox", "'s", "'ll", "'ve", "'re", "'d", "'t", "'m", "it's", " 42", "3.14", "١٢٣", "½",
    " ", "  ", "   ", "\n", "\n\n", "\r\n", "\t", " \n ", "\u00a0", "\u3000", "\u2028", "\x85", "\x0b", "\x1c",
    "é", "e\u0301", "\u0301", "a\u0308\u0323", "ß", "İ", "ǅ", "Ⅻ", "漢字", "カタカナ", "한국어", "ไทย", "עברית", "عربى",
    "🙂", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "\u200d", "\ufeff", "\ufffd", "!", "?!", "...", "—", "«", "»", "$", "@#",
    "<|", "|>", "<|end", "endoftext", "|", "\x00", "\x7f",
]


def _random_char(rng: random.Random) -> str:
    """A code point from any plane, never a surrogate: one assigned in Unicode 14 (this Python's table), a
    never-assigned one (planes 4-13) or a private-use one (planes 15-16).

    Code points assigned after Unicode 14 are left out on purpose: the `regex` package and tiktoken's Rust engine
    carry different Unicode versions and disagree on whether e.g. U+331C7 (CJK Extension J) is a letter, which
    moves pre-token boundaries, so there the two encoders differ (documented in the README)."""
    while True:
        plane = rng.choice([0, 0, 0, 1, 1, 2, 3, 4, 9, 13, 14, 15, 16])
        cp = plane * 0x10000 + rng.randrange(0x10000)
        if 0xD800 <= cp < 0xE000:
            continue
        if 4 <= plane <= 13 or plane >= 15 or unicodedata.category(chr(cp)) != "Cn":
            return chr(cp)


def random_text(rng: random.Random, surrogates: bool) -> str:
    parts = []
    for _ in range(rng.randint(0, 25)):
        r = rng.random()
        if r < 0.55:
            parts.append(rng.choice(_PIECES))
        elif r < 0.75:
            parts.append("".join(_random_char(rng) for _ in range(rng.randint(1, 4))))
        elif r < 0.9:
            parts.append(rng.choice(SPECIALS) * rng.randint(1, 3))
        elif surrogates:
            parts.append(chr(rng.randrange(0xD800, 0xE000)))
        else:
            parts.append(rng.choice(_PIECES).upper())
    return "".join(parts)


# ---- fast paths and memory: devices, batches, gradients, a model whose memory is its logits ----

CPU = torch.device("cpu")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def batch(cfg, seed: int = 0, device=CPU) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.randint(0, cfg.model.vocab_size, (2, cfg.train.batch_size, cfg.model.context_length), generator=g)
    return xy[0].to(device), xy[1].to(device)


def assert_grads_close(a: dict, b: dict, **tol) -> None:
    for name in a:
        torch.testing.assert_close(a[name], b[name], **tol, msg=lambda m, n=name: f"{n}: {m}")


def wide_logits_config(**overrides) -> RunConfig:
    """A model whose memory is mostly its (batch × 128 × 8192) logits: each sequence adds ~9 MiB (the logits, their
    exp and their gradient, 4 MiB each, partly reusing freed memory), far above the ~0.3 MiB by which a process's
    peak resident memory varies from run to run."""
    flat = {"model.vocab_size": 8192, "model.context_length": 128, "model.d_model": 16, "model.num_layers": 1,
            "model.num_heads": 2, "model.d_ff": 32, "train.device": "cpu"}
    return RunConfig.from_flat({**flat, **overrides})


# A small workflow design for experiments.design tests: two datasets, a sweep and ablations.
DESIGN_BASE = {
    "data": {"ts": {"tokenizer": {"vocab_size": 500}}, "web": {"tokenizer": {"vocab_size": 600}}},
    "defaults": {"dataset": "ts", "model": {"context_length": 16, "d_model": 16, "num_layers": 1, "num_heads": 2,
                                            "d_ff": 32},
                 "optim": {"lr_max": 1.0e-3, "lr_min": 1.0e-5}, "train": {"token_budget": 4096, "batch_size": 8}},
    "experiments": {
        "lr_sweep": {"grid": {"optim.lr_max": [1.0e-3, 1.0e-2]},
                     "find_edge": {"factor": 2.0, "step": 3.0, "max_runs": 2}},
        "ablations": {"base": {"optim.lr_max": {"best_of": "lr_sweep"}},
                      "variants": {"baseline": {}, "nope": {"model.pos_emb": "none"},
                                   "low": {"optim.lr_max": {"best_of": "lr_sweep", "times": 0.25}}}},
        "main": {"base": {"optim.lr_max": {"best_of": "lr_sweep"}}, "variants": {"main": None}},
        "web": {"dataset": "web", "base": {"optim.lr_max": {"best_of": "lr_sweep"}}, "variants": {"main": {}}},
        "batch_size": {"grid": {"train.batch_size": [2, 8, "max"]}, "probe": {"memory_cap_mb": 100, "limit": 64},
                       "base": {"optim.lr_max": {"best_of": "lr_sweep", "batch_power": 0.5}},
                       "tune": {"optim.lr_max": [0.5, 1.0]}},
        "copies": {"variants": {"a": {"optim.lr_max": 1.0e-2}, "b": {"optim.lr_max": 1.0e-2, "train.seed": 0},
                                "logged": {"optim.lr_max": 1.0e-2, "train.log_interval": 3, "train.device": "cpu"},
                                "timed": {"optim.lr_max": 1.0e-2, "train.wall_clock_budget_s": 60.0},
                                "seeded": {"optim.lr_max": 1.0e-2, "train.seed": 1}}},
    },
}
