"""The Snakemake workflow as users run it: real `snakemake` subprocesses in temporary directories.

Dry runs of the course config (every run resolves, the right number of training jobs), config errors that fail
at DAG build naming the key, a tiny end-to-end run of the whole DAG (tests/data/tiny_config.yaml), reruns after
one run's config changes, lint, the HTML report, and the download rule against a local HTTP server.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cs336lm.experiments.selection import read_selection
from cs336lm.problems.answers import PROBLEMS
from cs336lm.reporting.registry import DELIVERABLES, all_figures
from cs336lm.reporting.writeup import heading

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "Snakefile"
COURSE_CONFIG = REPO / "config.yaml"
TINY_CONFIG = REPO / "tests" / "data" / "tiny_config.yaml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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


# ---- dry runs and config errors --------------------------------------------------------------------------

def test_course_config_dry_run_lists_every_run(tmp_path):
    result = snakemake(tmp_path, "-n", configfile=COURSE_CONFIG)
    assert result.returncode == 0, output(result)
    course = yaml.safe_load(COURSE_CONFIG.read_text())
    # Training jobs per experiment, with dedup and the checkpoints: tests/workflow/test_workflow_sweeps.py.
    assert {w["experiment"] for rule, w in planned_jobs(result) if rule == "train_lm"} >= set(course["experiments"]) - {
        "ts_main"}
    assert {rule for rule, _ in planned_jobs(result)} >= {"download_corpus", "train_bpe", "tokenize_corpus",
                                                          "tokenizer_stats", "generate_samples", "sample_grid",
                                                          "solve_problem", "plot_figure", "make_tables",
                                                          "write_report"}
    figures = {w["figure"] for rule, w in planned_jobs(result) if rule == "plot_figure"}
    assert figures == set(all_figures())  # the course config draws every figure of the registry
    assert not (tmp_path / "results").exists(), "a dry run must not touch data"


def test_lint_has_only_explained_warnings(tmp_path):
    result = snakemake(tmp_path, "--lint", configfile=COURSE_CONFIG)
    # Line numbers in lint titles move with every edit of the Snakefile; compare the titles without them.
    titles = {re.sub(r" in line \d+\.$", ".", t) for t in re.findall(r"^\s+\* (.+?):?$", output(result), re.MULTILINE)}
    explained = {"Specify a conda environment or container for each rule."}  # the environment is the pip package
    assert titles <= explained, output(result)


def set_key(path: str, value):
    """An edit of a loaded config: the value at a `/`-separated key path (dotted keys stay whole)."""
    def edit(config):
        *parents, last = path.split("/")
        node = config
        for key in parents:
            node = node[key]
        node[last] = value
    return edit


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (set_key("defaults/model/d_modle", 64), ["model.d_modle", "did you mean 'model.d_model'"]),
        (set_key("experiments/ablations/variants/nope", {"model.pos_embedding": "none"}),
         ["model.pos_embedding", "experiments.ablations", "nope"]),
        (set_key("experiments/ablations/variants/post_norm", {"model.norm_position": "after"}),
         ["model.norm_position", "'after'", "pre, post"]),
        (set_key("experiments/owt_main/dataset", "webtext"), ["experiments.owt_main.dataset", "webtext"]),
        (set_key("experiments/lr_sweep/grid", {"optim.lr_max": []}), ["experiments.lr_sweep has no variants"]),
        (set_key("experiments/ts_main/variants", {}), ["experiments.ts_main has no variants"]),
        (set_key("experiments/ts_main/base", {"model.vocab_size": 999}), ["model.vocab_size", "data.tinystories"]),
        (set_key("report/main", ["ts_main", "owt_mian"]), ["report.main", "owt_mian"]),
        (set_key("experimentz", {}), ["experimentz"]),
        (set_key("defaults/optim/lr_min", float("nan")), ["defaults.optim.lr_min = nan is not a finite number"]),
        (set_key("experiments/lr_sweep/grid", {"optim.lr_max": [1.0e-3, float("inf")]}),
         ["experiments.lr_sweep.grid.optim.lr_max = inf is not a finite number (run lr_sweep/lr_max~inf)"]),
        (set_key("experiments/ablations/variants/nope", {"model.pos_emb": "none", "optim.lr_min": 1.0}),
         ["experiments.ablations.variants.nope.optim.lr_min = 1.0 is above defaults.optim.lr_max = 0.003"]),
        (set_key("defaults/train/device", "cuda:x"), ["defaults.train.device = 'cuda:x'", "cuda:N"]),
        (set_key("data/owt/tokenizer/vocab_size", 65_537), ["65537 is greater than the maximum of 65536", "uint16",
                                                          "['data']['owt']['tokenizer']['vocab_size']"]),
        (set_key("experiments/ts_main/base", {"optim.lr_max": {"best_of": "lr_swep"}}),
         ["experiments.ts_main", "optim.lr_max", "best_of 'lr_swep' is not an experiment"]),
        (set_key("experiments/ts_main/base", {"optim.lr_max": {"best_off": "lr_sweep"}}),
         ["['experiments']['ts_main']['base']['optim.lr_max']"]),
        (set_key("experiments/ts_main/base", {"optim.lr_max": {"best_of": "ablations"}}),
         ["experiments.ts_main", "best_of 'ablations' has no grid over one key"]),
        (set_key("experiments/ts_main/base", {"optim.lr_max": {"best_of": "lr_sweep", "times": 0}}),
         ["['experiments']['ts_main']['base']['optim.lr_max']"]),
    ],
    ids=["unknown-key", "unknown-variant-key", "bad-enum", "missing-dataset", "empty-grid", "zero-variants",
         "vocab-mismatch", "report-names-missing-experiment", "schema-unknown-section", "nan-in-defaults",
         "inf-in-grid", "cross-field-names-both-places", "malformed-device", "vocab-above-uint16", "best-of-unknown",
         "best-of-misspelt", "best-of-not-a-sweep", "best-of-times-zero"],
)
def test_config_error_fails_dag_build_naming_the_key(tmp_path, edit, expected):
    result = snakemake(tmp_path, "-n", configfile=write_config(tmp_path / "config.yaml", edit))
    assert result.returncode != 0
    for text in expected:
        assert text in output(result), output(result)


def test_exponent_without_dot_gets_a_yaml_hint(tmp_path):
    text = TINY_CONFIG.read_text()
    assert "lr_max: 3.0e-3" in text
    (tmp_path / "config.yaml").write_text(text.replace("lr_max: 3.0e-3", "lr_max: 3e-3"))
    result = snakemake(tmp_path, "-n", configfile=tmp_path / "config.yaml")
    assert result.returncode != 0
    assert "defaults.optim.lr_max = '3e-3'" in output(result), output(result)
    assert "YAML reads 3e-3 as a string: write 3.0e-3" in output(result), output(result)


def test_largest_vocabulary_that_fits_uint16_token_files_is_accepted(tmp_path):
    config = write_config(tmp_path / "config.yaml", set_key("data/owt/tokenizer/vocab_size", 65_536))
    result = snakemake(tmp_path, "-n", configfile=config)
    assert result.returncode == 0, output(result)


# ---- the written problems ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_toy_sgd_rule_decays_at_1e1_and_diverges_at_1e3(tmp_path):
    target = "results-tiny/problems/learning_rate_tuning.csv"
    result = snakemake(tmp_path, target)
    assert result.returncode == 0, output(result)
    losses = pd.read_csv(tmp_path / target).pivot(index="step", columns="lr", values="loss")
    assert list(losses.columns) == [1.0, 10.0, 100.0, 1000.0] and len(losses) == 10
    assert losses[10.0].is_monotonic_decreasing and losses[10.0].iloc[-1] < losses[10.0].iloc[0] / 5
    assert losses[1000.0].is_monotonic_increasing and losses[1000.0].iloc[-1] > 1e15 * losses[1000.0].iloc[0]


# ---- the tiny end-to-end run -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("tiny")
    result = snakemake(workdir, timeout=900)
    assert result.returncode == 0, output(result)[-6000:]
    return workdir


@pytest.mark.slow
def test_tiny_run_makes_every_output(tiny_run):
    root = tiny_run / "results-tiny"
    config = yaml.safe_load(TINY_CONFIG.read_text())
    figures = sorted((root / "figures").rglob("*.png"))
    assert {f.relative_to(root / "figures").as_posix() for f in figures} == {f"{name}.png" for name in all_figures()}
    for figure in figures:
        assert figure.read_bytes()[:8] == PNG_MAGIC, figure
    for name in ("runs.csv", "tokenizer_stats.csv", "tokenizer_stats.md"):
        assert (root / "tables" / name).stat().st_size > 0, name
    for name in PROBLEMS:
        assert (root / "problems" / f"{name}.csv").stat().st_size > 0, name
    for experiment in ("ts_main", "owt_main"):
        assert (root / "samples" / experiment / "main.md").stat().st_size > 0
    grid = pd.read_csv(root / "samples" / "generation_grid.csv")
    assert len(grid) == len(config["generate"]["prompts"]) * 2  # 2 temperatures x 1 top-p x 1 sample
    for kind in ("logs", "benchmarks"):
        assert (root / kind / "train_lm" / "owt_main" / ("main.log" if kind == "logs" else "main.tsv")).exists()
    request = json.loads((root / "runs/owt_main/main/request.json").read_text())
    assert request["requested_minutes"] >= config["machine"]["runtime"]["min_minutes"]
    report = (root / "report.md").read_text()
    for deliverable in DELIVERABLES:
        assert heading(deliverable) in report, deliverable.name
    assert "Not run in this configuration" not in report and "n/a" not in report
    for experiment, spec in config["experiments"].items():
        assert experiment in report
        variants = spec["variants"] if "variants" in spec else [f"lr_max~{v:g}" for v in spec["grid"].get(
            "optim.lr_max", [])] + [f"batch_size~{v}" for v in spec["grid"].get("train.batch_size", [])]
        for variant in variants:
            assert variant in report, variant
    assert "demo numbers (synthetic corpus)" in report
    assert not (REPO / "results-tiny").exists()
    for summary_path in (root / "runs").glob("*/*/summary.json"):  # every model's vocabulary is its tokenizer's
        summary = json.loads(summary_path.read_text())
        vocab = json.loads((root / "tokenizers" / summary["dataset"]["name"] / "vocab.json").read_text())
        assert summary["config"]["model"]["vocab_size"] == len(vocab), summary_path


@pytest.mark.slow
def test_tiny_run_trains_identical_names_once_and_reports_both(tiny_run):
    root = tiny_run / "results-tiny"
    winner = read_selection(root / "selections/lr_sweep.json")
    # The ablation baseline and ts_main equal the lr sweep's best run: no training of their own ...
    for name in ("ablations/baseline", "ts_main/main"):
        assert not (root / "runs" / name).exists() and not (root / "logs/train_lm" / f"{name}.log").exists()
    assert (root / winner.run_dir.removeprefix("results-tiny/") / "summary.json").exists()
    # ... yet both appear under their own names, with the winner's numbers.
    table = pd.read_csv(root / "tables/runs.csv")
    text = table.to_csv()
    for experiment, variant in (("ablations", "baseline"), ("ts_main", "main"), ("lr_sweep", winner.variant)):
        assert experiment in text and variant in text, text
    assert (root / "samples/ts_main/main.md").stat().st_size > 0
    report = (root / "report.md").read_text()
    assert "baseline" in report and "ts_main" in report


@pytest.mark.slow
def test_tiny_run_evaluates_every_n_tokens_whatever_the_batch_size(tiny_run):
    root = tiny_run / "results-tiny"
    points = {}
    for batch_size in (4, 16):  # each batch size's tuned run: stable by construction
        run = read_selection(root / f"selections/batch_size/batch_size~{batch_size}.json").run_dir
        lines = [json.loads(line) for line in (tiny_run / run / "metrics.jsonl").read_text().splitlines()]
        points[batch_size] = [line["tokens"] for line in lines if line.get("val_loss") is not None]
    assert len(points[4]) == len(points[16]) >= 3, points
    every = yaml.safe_load(TINY_CONFIG.read_text())["defaults"]["train"]["eval_every_tokens"]
    for batch_size, tokens in points.items():
        steps = [t // every for t in tokens[:-1]]
        assert steps == list(range(1, len(tokens))), (batch_size, tokens)  # one point per multiple, then the end


@pytest.mark.slow
def test_tiny_run_is_complete_then_one_lr_change_reruns_that_run_and_its_plots(tiny_run, tmp_path):
    nothing = snakemake(tiny_run, "-n")
    assert nothing.returncode == 0 and planned_jobs(nothing) == [], output(nothing)

    changed = write_config(tmp_path / "changed.yaml",
                           set_key("experiments/ablations/variants/no_rmsnorm_low_lr", {"model.norm": "none",
                                                                                     "optim.lr_max": 2.0e-3}))
    result = snakemake(tiny_run, "-n", configfile=changed)
    assert result.returncode == 0, output(result)
    jobs = planned_jobs(result)
    assert sorted(rule for rule, _ in jobs) == ["all", "make_tables", "plot_figure", "train_lm", "write_report"]
    rerun = sorted((rule, w.get("variant") or w.get("figure")) for rule, w in jobs
                   if rule in ("train_lm", "plot_figure"))
    assert rerun == [("plot_figure", "layer_norm_ablation"), ("train_lm", "no_rmsnorm_low_lr")]


@pytest.mark.slow
def test_tiny_run_html_report(tiny_run):
    result = snakemake(tiny_run, "--report", "report.html")
    assert result.returncode == 0, output(result)
    html = (tiny_run / "report.html").read_text(errors="replace")
    for name, figure in all_figures().items():  # captions sit in the page's JSON, non-ASCII escaped
        assert f"{name}.png" in html and json.dumps(figure.caption.split(":")[0])[1:-1] in html, name
    tables = ("report.md", "runs.csv", "tokenizer_stats.csv", "generation_grid.csv", *(f"{p}.csv" for p in PROBLEMS))
    for name in tables:
        assert name in html, name


# ---- the download rule, against a local server -----------------------------------------------------------

@pytest.fixture
def http_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.slow
def test_download_rule_fetches_checks_and_names_bad_urls(tmp_path, http_server):
    served, base = http_server
    text = "Once upon a time there was a tiny test corpus.<|endoftext|>\n" * 200
    (served / "train.txt").write_text(text)

    def with_sources(train: dict):
        return lambda config: config["data"]["tinystories"].update(train=train)

    good = write_config(tmp_path / "good.yaml", with_sources({"url": f"{base}/train.txt"}))
    work = tmp_path / "work"
    work.mkdir()
    target = "results-tiny/downloads/tinystories/train.txt"
    result = snakemake(work, target, configfile=good)
    assert result.returncode == 0, output(result)
    assert (work / target).read_text() == text

    wrong = write_config(tmp_path / "wrong.yaml", with_sources({"url": f"{base}/train.txt", "sha256": "0" * 64}))
    (work / target).unlink()
    result = snakemake(work, target, configfile=wrong)
    assert result.returncode != 0 and not (work / target).exists()
    log = (work / "results-tiny/logs/download_corpus/tinystories_train.log").read_text()
    assert "sha256" in (log + output(result)).lower()

    missing = write_config(tmp_path / "missing.yaml", with_sources({"url": f"{base}/nowhere.txt"}))
    result = snakemake(work, target, configfile=missing)
    assert result.returncode != 0 and not (work / target).exists()
    log = (work / "results-tiny/logs/download_corpus/tinystories_train.log").read_text()
    assert f"{base}/nowhere.txt" in log + output(result)
