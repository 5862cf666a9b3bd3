"""The Snakemake workflow as users run it: real `snakemake` subprocesses in temporary directories.

Dry runs of the course config (every run resolves, the right number of training jobs), config errors that fail
at DAG build naming the key, a tiny end-to-end run of the whole DAG (tests/data/tiny_config.yaml), reruns after
one run's config changes, lint, the HTML report, and the download rule against a local HTTP server and on
files already on the machine.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import json
import os
import re
import threading
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cs336lm.experiments.selection import read_selection
from cs336lm.problems.answers import PROBLEMS, solve_problem
from cs336lm.reporting.registry import DELIVERABLES, all_figures
from cs336lm.reporting.writeup import heading
from cs336lm.tokenization import Tokenizer
from cs336lm.tokenization.pretokenize import read_counts
from cs336lm.tokenization.stats import sample_documents
from tests.helpers import (
    COURSE_CONFIG,
    REPO,
    TINY_CONFIG,
    equals_to_printed_precision,
    markdown_tables,
    output,
    planned_jobs,
    printed_number,
    set_key,
    snakemake,
    write_config,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

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


LINT_BLOCK = re.compile(r"^Lints for (?:rule (\w+)|snakefile \S+) \(line \d+, [^)]+\):$")


def parse_lint(text: str) -> dict[str, set[str]]:
    """{rule: lint titles} from `snakemake --lint` text; an AssertionError on any line of another shape."""
    lints, current = {}, None
    for line in text.splitlines():
        if not line.strip():
            continue
        if block := LINT_BLOCK.match(line):
            current = lints.setdefault(block.group(1) or "(snakefile)", set())
        elif current is not None and (title := re.match(r"^    \* (.+?):?$", line)):
            # Line numbers in titles move with every edit of the Snakefile; keep the titles without them.
            current.add(re.sub(r" in line \d+\.$", ".", title.group(1)))
        else:
            assert current is not None and line.startswith("      "), f"unexpected lint output line: {line!r}"
    return lints


def test_lint_has_only_explained_warnings(tmp_path):
    result = snakemake(tmp_path, "--lint", configfile=COURSE_CONFIG)
    lints = parse_lint(output(result))
    # Snakemake exits 1 when it prints lints and 0 when there are none; anything else (or 1 with nothing parsed)
    # is a crash, which must not pass as "no unexplained warnings".
    assert result.returncode == (1 if lints else 0), output(result)[-3000:]
    assert "Traceback" not in output(result), output(result)[-3000:]
    explained = {"Specify a conda environment or container for each rule."}  # the environment is the pip package
    assert lints, "lint printed nothing: the conda/container lint of every rule is expected"
    assert all(titles and titles <= explained for titles in lints.values()), lints
    assert {"download_corpus", "train_bpe", "train_lm", "write_report"} <= set(lints), sorted(lints)


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
        (set_key("experiments/leaderboard_candidates/variants/qk_norm", {"model.qk_nrom": "rmsnorm"}),
         ["model.qk_nrom", "experiments.leaderboard_candidates.variants.qk_norm", "did you mean 'model.qk_norm'"]),
        (set_key("experiments/leaderboard_candidates/variants/qk_norm", {"train.token_budget": 25600}),
         ["experiments.leaderboard_candidates.variants.longer.train.token_budget = 38400 conflicts with "
          "variants.qk_norm.train.token_budget = 25600: the two modifications cannot be combined"]),
        (set_key("experiments/leaderboard_candidates/variants", {
            "baseline": {}, "heads": {"model.num_heads": 8}, "wide": {"model.d_model": 40}}),
         ["experiments.leaderboard.combine = 'leaderboard_candidates': the modifications of heads, wide together "
          "do not make a valid run leaderboard/main", "RoPE needs an even head dimension"]),
    ],
    ids=["unknown-key", "unknown-variant-key", "bad-enum", "missing-dataset", "empty-grid", "zero-variants",
         "vocab-mismatch", "report-names-missing-experiment", "schema-unknown-section", "nan-in-defaults",
         "inf-in-grid", "cross-field-names-both-places", "malformed-device", "vocab-above-uint16", "best-of-unknown",
         "best-of-misspelt", "best-of-not-a-sweep", "best-of-times-zero", "unknown-modification-key",
         "conflicting-modifications", "modifications-invalid-together"],
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
    # The tables', problems' and samples' contents: test_tiny_run_tables_problems_and_samples_match_their_sources.
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
def test_tiny_run_tables_problems_and_samples_match_their_sources(tiny_run, tmp_path):
    root = tiny_run / "results-tiny"
    config = yaml.safe_load(TINY_CONFIG.read_text())
    runs = run_summaries(root)

    # runs.csv: a row per trained run directory (losing tuning candidates included), under the name it trained as;
    # every other name of the config is shown as one of them. Each row's numbers are its summary.json's.
    table = pd.read_csv(root / "tables/runs.csv").set_index(["experiment", "variant"])
    trained = {(p.parent.parent.name, p.parent.name) for p in (root / "runs").glob("*/*/summary.json")}
    assert set(table.index) == trained and len(table) == len(trained)
    shown = {tuple(name.split("/")) for names in table["shown_as"].fillna("") if names for name in names.split("; ")}
    assert set(runs) <= trained | shown, "every run name has its row or is shown as another's"
    for run in sorted(trained):
        summary = json.loads((root / "runs" / run[0] / run[1] / "summary.json").read_text())
        row = table.loc[run]
        assert row["status"] == summary["status"], run
        for column in ("final_val_loss", "best_val_loss", "final_train_loss", "wall_time_s", "tokens_per_s"):
            assert (pd.isna(row[column]) and summary[column] is None) or row[column] == summary[column], (run, column)
        assert (row["steps"], row["tokens"]) == (summary["steps"], summary["tokens"]), run
        assert row["parameters"] == summary["parameters"]["total"], run
        assert row["non_embedding_parameters"] == summary["parameters"]["non_embedding"], run

    # tokenizer_stats.csv: every (tokenizer, corpus) pair, its counts recomputed from the tokenizer files and the
    # sampled validation documents; tokenizer_stats.md shows the same rows.
    stats = pd.read_csv(root / "tables/tokenizer_stats.csv", keep_default_na=False)
    datasets = list(config["data"])
    assert sorted(zip(stats["tokenizer"], stats["corpus"], strict=True)) == sorted(
        (t, c) for t in datasets for c in datasets)
    settings = config["tokenizer_stats"]
    for row in stats.itertuples():
        tokenizer = Tokenizer.from_files(root / f"tokenizers/{row.tokenizer}/vocab.json",
                                         root / f"tokenizers/{row.tokenizer}/merges.txt", ["<|endoftext|>"])
        documents = sample_documents(root / f"synthetic/{row.corpus}/valid.txt", settings["num_documents"],
                                     seed=settings["seed"])
        assert row.documents == len(documents) == settings["num_documents"]
        assert row.bytes == sum(len(d.encode("utf-8")) for d in documents)
        assert row.tokens == sum(len(tokenizer.encode(d)) for d in documents)
        assert row.bytes_per_token == row.bytes / row.tokens
        longest = max((t for t in tokenizer.vocab.values() if t != b"<|endoftext|>"), key=len)
        assert row.longest_token_bytes == len(longest), row
        for rate, hours in ((row.mb_per_s, row.pile_825gb_hours), (row.mb_per_s_python, row.pile_825gb_hours_python)):
            assert hours == pytest.approx(825e9 / (rate * 1e6) / 3600)
    markdown = markdown_tables((root / "tables/tokenizer_stats.md").read_text())[0][1]
    assert [(r["tokenizer"], r["corpus"], int(r["tokens"])) for r in markdown] == list(
        zip(stats["tokenizer"], stats["corpus"], stats["tokens"], strict=True))

    # The written problems: each table is what its code gives on the inputs the workflow handed it, and unicode2's
    # encoding sizes are those of the validation texts themselves.
    texts = {d: str(root / f"synthetic/{d}/valid.txt") for d in datasets}
    for name in PROBLEMS:
        written = pd.read_csv(root / "problems" / f"{name}.csv")
        solve_problem(name, texts, tmp_path / f"{name}.csv")
        fresh = pd.read_csv(tmp_path / f"{name}.csv")
        pd.testing.assert_frame_equal(written, fresh, check_exact=name != "learning_rate_tuning", obj=name)
    unicode2 = pd.read_csv(root / "problems/unicode2.csv").set_index("input")
    for dataset, path in texts.items():
        text = Path(path).read_text(encoding="utf-8")
        row = unicode2.loc[dataset]
        assert row["characters"] == len(text) and row["utf8_bytes"] == len(text.encode("utf-8")), dataset
        assert row["utf16_bytes"] == len(text.encode("utf-16-le"))
        assert row["utf32_bytes"] == len(text.encode("utf-32-le"))

    # Samples: from the model of the run each experiment name resolves to, one per prompt, prompt first and at
    # most max_new_tokens new tokens; the grid has every (temperature, top-p, prompt, sample).
    generate = config["generate"]
    winner = read_selection(root / "selections/lr_sweep.json").run_dir
    for experiment, run_dir in (("ts_main", winner), ("owt_main", "results-tiny/runs/owt_main/main")):
        sheet = (root / "samples" / experiment / "main.md").read_text()
        assert sheet.startswith(f"# Samples from `{run_dir}/model.pt`"), sheet[:200]
        assert (f"temperature {generate['temperature']}, top-p {generate['top_p']}, at most "
                f"{generate['max_new_tokens']} new tokens, seed {generate['seed']}") in sheet
        samples = re.findall(r"\*\*Prompt:\*\* '(.*)'\n\n```text\n(.*?)\n```\n\n(\d+) new tokens", sheet, re.S)
        assert [prompt for prompt, _, _ in samples] == generate["prompts"], sheet
        for prompt, text, new_tokens in samples:
            assert text.startswith(prompt) and 0 < int(new_tokens) <= generate["max_new_tokens"], sheet
    grid = pd.read_csv(root / "samples" / "generation_grid.csv", keep_default_na=False)
    settings = generate["grid"]
    assert sorted(zip(grid["temperature"], grid["top_p"], grid["prompt"], grid["seed"], strict=True)) == sorted(
        (t, p, prompt, s) for t in settings["temperature"] for p in settings["top_p"] for prompt in generate["prompts"]
        for s in range(settings["samples_per_prompt"]))
    assert set(grid["model"]) == {f"{winner}/model.pt"}
    for row in grid.itertuples():
        words = row.completion.lower().split()
        assert 0 < row.new_tokens <= generate["max_new_tokens"] and row.completion
        assert row.distinct_1 == pytest.approx(len(set(words)) / len(words)), row


@pytest.mark.slow
def test_tiny_run_trains_identical_names_once_and_reports_both(tiny_run):
    root = tiny_run / "results-tiny"
    winner = read_selection(root / "selections/lr_sweep.json")
    # The ablation baseline and ts_main equal the lr sweep's best run: no training of their own ...
    for name in ("ablations/baseline", "ts_main/main"):
        assert not (root / "runs" / name).exists() and not (root / "logs/train_lm" / f"{name}.log").exists()
    assert (root / winner.run_dir.removeprefix("results-tiny/") / "summary.json").exists()
    # ... yet both appear under their own names, with the winner's numbers (the report's rows:
    # test_tiny_run_report_prints_the_numbers_of_the_files_it_cites).
    table = pd.read_csv(root / "tables/runs.csv").set_index(["experiment", "variant"])
    row = table.loc[("lr_sweep", winner.variant)]
    assert set(row["shown_as"].split("; ")) >= {"ablations/baseline", "ts_main/main"}, "one row naming every name"
    assert row["final_val_loss"] == winner.final_val_loss
    assert f"# Samples from `{winner.run_dir}/model.pt`" in (root / "samples/ts_main/main.md").read_text()


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


# ---- the report's numbers are the files' numbers ------------------------------------------------------------

def run_summaries(root: Path) -> dict[tuple[str, str], dict]:
    """{(experiment, variant): summary.json} of every run of the tiny config, the shared ones resolved through the
    log's other names of each trained directory and the selection files: the ablation baseline and ts_main are the
    lr sweep's best run, each batch size the best of its own rates, the candidates' baseline is owt_main's run."""
    config = yaml.safe_load(TINY_CONFIG.read_text())
    best = read_selection(root / "selections/lr_sweep.json")
    # The log names the other names of each trained directory (its own rows are checked against the files).
    log = pd.read_csv(root / "tables/runs.csv").fillna("")
    shared = {name: f"{row.experiment}/{row.variant}" for row in log.itertuples() if row.shown_as
              for name in row.shown_as.split("; ")}
    runs = {}
    for experiment, spec in config["experiments"].items():
        if "variants" in spec:
            variants = list(spec["variants"])
        elif experiment == "lr_sweep":  # the grid and the rates its edge search added
            variants = [c.variant for c in best.candidates]
        else:
            variants = [f"batch_size~{b}" for b in spec["grid"]["train.batch_size"]]
        for variant in variants:
            own = root / "runs" / experiment / variant / "summary.json"
            if not own.exists() and f"{experiment}/{variant}" in shared:  # trained once under another name
                own = root / "runs" / shared[f"{experiment}/{variant}"] / "summary.json"
            elif (experiment, variant) in (("ablations", "baseline"), ("ts_main", "main")):
                own = root.parent / best.run_dir / "summary.json"
            elif experiment == "batch_size":
                own = root.parent / read_selection(root / f"selections/batch_size/{variant}.json").run_dir / \
                    "summary.json"
            runs[(experiment, variant)] = json.loads(own.read_text())
    # Every other trained directory too (a tuned variant's losing rates), under the name it trained as.
    for path in (root / "runs").glob("*/*/summary.json"):
        runs.setdefault((path.parent.parent.name, path.parent.name), json.loads(path.read_text()))
    return runs


def row_run(row: dict[str, str], heading: str, runs: dict[tuple[str, str], dict]) -> tuple[str, str] | None:
    """The run a table row is about, from its label columns; None for a row about no run."""
    if "experiment" in row and "variant" in row:
        return row["experiment"], row["variant"]
    if "batch size" in row:  # before lr_max: a batch size's row also shows the rate it chose
        return "batch_size", f"batch_size~{row['batch size']}"
    if "lr_max" in row and ("lr_sweep", f"lr_max~{row['lr_max']}") in runs:
        return "lr_sweep", f"lr_max~{row['lr_max']}"
    if "run" in row:
        label = row["run"].strip("`")
        # The section's name is its deliverable, e.g. "## 7.5 `leaderboard`: ..." names the leaderboard runs.
        section = re.search(r"`(\w+)`", heading).group(1)
        matches = [r for r in runs if label in (r[1], r[0], "/".join(r))]
        if len(matches) > 1:
            matches = [r for r in matches if r[0] == section or r[0] == label or r[0] == "ablations"]
        assert len(matches) == 1, f"{heading}: cannot tell which run the row {row} is about: {matches}"
        return matches[0]
    return None


def summary_value(column: str, summary: dict, baseline: dict) -> float | None:
    """The summary's value a report column shows, None for a column that is not a summary field."""
    name = column.lower()
    final, fields = summary["final_val_loss"], {
        "best val loss": summary["best_val_loss"], "steps": summary["steps"], "tokens": summary["tokens"],
        "tokens trained": summary["tokens"], "tokens/s": summary["tokens_per_s"], "wall time": summary["wall_time_s"],
        "non-embedding parameters": summary["parameters"]["non_embedding"]}
    if name.startswith("final val loss"):
        return final
    if name == "δ vs baseline":  # none for the baseline itself
        return None if final is None or summary is baseline else final - baseline["final_val_loss"]
    return fields.get(name, "not a summary field")


@pytest.mark.slow
def test_tiny_run_report_prints_the_numbers_of_the_files_it_cites(tiny_run):
    root = tiny_run / "results-tiny"
    runs = run_summaries(root)
    report = (root / "report.md").read_text()
    checked = set()
    for title, rows in markdown_tables(report):
        for row in rows:
            run = row_run(row, title, runs)
            if run is None:
                continue
            summary = runs[run]
            for column, cell in row.items():
                value = summary_value(column, summary, runs[("ablations", "baseline")])
                if value == "not a summary field":
                    continue
                where = f"{title} | {'/'.join(run)} | {column} = {cell!r}"
                printed = printed_number(cell)
                if printed is None:  # a loss the run never reached: the run must say so
                    assert value is None or summary["status"] == "diverged", where
                    continue
                assert value is not None, where
                assert equals_to_printed_precision(printed, value), f"{where}: the file says {value}"
                checked.add((run, column.lower()))
                # A log row's other names (trained once, shown under each) have these same numbers.
                for name in filter(None, row.get("also shown as", "—").strip("—").split(", ")):
                    alias = tuple(name.strip("` ").split("/"))
                    if alias in runs:  # a tuning candidate that is another run has no name of its own here
                        assert runs[alias] == summary, f"{where}: {name} shares its run"
                        checked.add((alias, column.lower()))
    assert {run for run, _ in checked} == set(runs), "every run has its numbers in some table"
    assert {column for _, column in checked} >= {"final val loss", "best val loss", "steps", "tokens", "tokens/s"}

    # The rates each batch size tried, as the selection files list them: "0.0025 (4.74), **0.005** (4.26)".
    tried = [(row["batch size"], row["rates tried (final val loss)"]) for _, rows in markdown_tables(report)
             for row in rows if "rates tried (final val loss)" in row]
    assert len(tried) == 2, tried
    for batch_size, cell in tried:
        selection = read_selection(root / f"selections/batch_size/batch_size~{batch_size}.json")
        printed = re.findall(r"(\*\*)?([\d.e+-]+)\*?\*? \(([^)]+)\)", cell)
        assert len(printed) == len(selection.candidates), cell
        for (bold, rate, loss), candidate in zip(printed, sorted(selection.candidates, key=lambda c: c.value),
                                                 strict=True):
            assert equals_to_printed_precision(rate, candidate.value), cell
            assert bool(bold) == (candidate.value == selection.value), cell
            if candidate.status == "diverged":
                assert loss == "diverged", cell
            else:
                assert equals_to_printed_precision(loss, candidate.final_val_loss), cell

    # Sentences: a final validation loss printed after a run's name is that run's; any other is some run's.
    finals = {run: s["final_val_loss"] for run, s in runs.items() if s["final_val_loss"] is not None}
    sentences = 0
    for line in report.splitlines():
        if line.startswith("|"):
            continue
        for match in re.finditer(r"final validation loss,? (\d[\d.,]*\d|\d)", line):
            names = re.findall(r"`([\w~.]+(?:/[\w~.]+)?)`", line[:match.start()])
            named = [r for r in finals if names and names[-1] in ("/".join(r), r[1])]
            candidates = [finals[named[0]]] if len(named) == 1 else list(finals.values())
            assert any(equals_to_printed_precision(match.group(1), v) for v in candidates), (line, candidates)
            sentences += 1
    assert sentences >= 3, "the report states final losses in its sentences"


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


@pytest.mark.slow
def test_download_rule_uses_site_copies_in_place(tmp_path):
    """Sources already on the machine: a plain path is symlinked, a file:// .gz decompressed once; both feed the
    tokenizer rules, a second run has nothing to do, and a missing file is named."""
    shared = tmp_path / "shared"
    shared.mkdir()
    train_text = "Once upon a time there was a shared corpus.<|endoftext|>\n" * 300
    valid_text = "The end of a small story.<|endoftext|>\n" * 100
    (shared / "train.txt").write_text(train_text)
    (shared / "valid.txt.gz").write_bytes(gzip.compress(valid_text.encode(), mtime=0))
    valid_sha256 = hashlib.sha256((shared / "valid.txt.gz").read_bytes()).hexdigest()

    def with_sources(train: str):
        return lambda config: config["data"]["tinystories"].update(
            train={"url": train}, valid={"url": (shared / "valid.txt.gz").as_uri(), "sha256": valid_sha256})

    os.utime(shared / "train.txt", (1.0e9, 1.0e9))  # an old shared file: the run must not touch it
    config = write_config(tmp_path / "site.yaml", with_sources(str(shared / "train.txt")))
    work = tmp_path / "work"
    work.mkdir()
    downloads = work / "results-tiny" / "downloads" / "tinystories"
    targets = [f"results-tiny/downloads/tinystories/{split}.txt" for split in ("train", "valid")]
    pretokens = [f"results-tiny/tokenizers/tinystories/pretokens/{shard}.json" for shard in (0, 1)]
    targets += pretokens
    result = snakemake(work, *targets, configfile=config)
    assert result.returncode == 0, output(result)
    assert (downloads / "train.txt").is_symlink()
    assert (downloads / "train.txt").stat().st_ino == (shared / "train.txt").stat().st_ino
    assert (shared / "train.txt").stat().st_mtime == 1.0e9
    assert not (downloads / "valid.txt").is_symlink() and (downloads / "valid.txt").read_text() == valid_text
    assert sum(read_counts(work / path)[0][" shared"] for path in pretokens) == 300  # one per document
    again = snakemake(work, *targets, "-n", configfile=config)
    assert again.returncode == 0 and "Nothing to be done" in output(again), output(again)

    missing = write_config(tmp_path / "missing.yaml", with_sources(str(shared / "nowhere.txt")))
    (downloads / "train.txt").unlink()
    result = snakemake(work, targets[0], configfile=missing)
    assert result.returncode != 0 and not (downloads / "train.txt").exists()
    log = (work / "results-tiny/logs/download_corpus/tinystories_train.log").read_text()
    assert f"no such file {shared / 'nowhere.txt'}" in log + output(result)
