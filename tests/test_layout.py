"""cs336lm.layout: every results path spelled once, the same for one file and for a rule's wildcard pattern."""

from __future__ import annotations

import re

import pytest

from cs336lm.layout import Layout


@pytest.fixture
def layout() -> Layout:
    return Layout("results/")  # a trailing slash in results_root is not doubled


def test_every_path_is_under_the_root(layout):
    run = layout.run_dir("lr_sweep", "lr_max~0.001")
    assert run == "results/runs/lr_sweep/lr_max~0.001"
    assert [layout.model(run), layout.metrics(run), layout.summary(run), layout.request(run), layout.progress(run)] \
        == [f"{run}/model.pt", f"{run}/metrics.jsonl", f"{run}/summary.json", f"{run}/request.json", f"{run}/progress"]
    assert layout.corpus_text("owt", "valid") == "results/downloads/owt/valid.txt"
    assert layout.corpus_text("owt", "valid", synthetic=True) == "results/synthetic/owt/valid.txt"
    assert layout.vocab("owt") == "results/tokenizers/owt/vocab.json"
    assert layout.merges("owt") == "results/tokenizers/owt/merges.txt"
    assert layout.bpe_stats("owt") == "results/tokenizers/owt/train_stats.json"
    assert layout.pretoken_counts("owt", 3) == "results/tokenizers/owt/pretokens/3.json"
    assert layout.tokens("owt", "train") == "results/tokens/owt/train.npy"
    assert layout.token_shard("owt", "train", 3) == "results/tokens/owt/train.shards/3.npy"
    assert layout.sweep_plan("lr_sweep", 2) == "results/sweeps/lr_sweep/round2.json"
    assert layout.selection("batch_size/batch_size~64") == "results/selections/batch_size/batch_size~64.json"
    assert layout.probe("batch_size") == "results/probes/batch_size.json"
    assert layout.problem("unicode1") == "results/problems/unicode1.csv"
    assert layout.samples("ts_main", "main") == "results/samples/ts_main/main.md"
    assert layout.generation_grid() == "results/samples/generation_grid.csv"
    assert layout.table("runs") == "results/tables/runs.csv"
    assert layout.table("tokenizer_stats", "md") == "results/tables/tokenizer_stats.md"
    assert layout.figure("lr_sweep") == "results/figures/lr_sweep.png"
    assert layout.report() == "results/report.md"
    assert layout.log("train_bpe", "owt") == "results/logs/train_bpe/owt.log"
    assert layout.benchmark("train_bpe", "owt") == "results/benchmarks/train_bpe/owt.tsv"


def test_a_wildcard_pattern_matches_the_files_it_names(layout):
    """A rule's output pattern (wildcards as arguments) matches exactly the paths the same method gives for values,
    so the rules and the report cannot disagree about a path."""
    pattern = layout.token_shard("{dataset}", "{split}", "{shard}")
    assert pattern == "results/tokens/{dataset}/{split}.shards/{shard}.npy"
    regex = re.escape(pattern).replace(r"\{dataset\}", "(?P<dataset>[^/]+)").replace(r"\{split\}", "(?P<split>[^/]+)")
    regex = regex.replace(r"\{shard\}", "(?P<shard>[0-9]+)")
    match = re.fullmatch(regex, layout.token_shard("owt", "valid", 12))
    assert match is not None and match.groupdict() == {"dataset": "owt", "split": "valid", "shard": "12"}
