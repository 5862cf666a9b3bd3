"""cs336lm.reporting.manifest, without Snakemake: on the tiny workflow config, which files answer which
deliverable, which figures can be drawn, each figure's runs, the writeup's manifest read back as ReportInputs, and
the errors for a report section that names what the config lacks."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from cs336lm.config import ConfigError
from cs336lm.experiments.design import Design
from cs336lm.layout import Layout
from cs336lm.problems.answers import PROBLEMS
from cs336lm.reporting.inputs import ROLES, ReportInputs
from cs336lm.reporting.manifest import ReportManifest, run_files
from cs336lm.reporting.registry import all_figures

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny_config.yaml"
REFERENCE = "reference.yaml"


def manifest_of(edit=None) -> ReportManifest:
    config = yaml.safe_load(TINY.read_text())
    if edit:
        edit(config)
    return ReportManifest(config, Design(config), Layout(config["results_root"]), REFERENCE)


def run_dirs(manifest: ReportManifest) -> dict[str, dict[str, str]]:
    """As the workflow gives them once the sweeps have chosen: the ablation baseline is the lr sweep's winner."""
    layout, design = manifest.layout, manifest.design
    dirs = {e: {v: layout.run_dir(e, v) for v in spec.variants} for e, spec in design.experiments.items()}
    dirs["ablations"]["baseline"] = dirs["lr_sweep"]["lr_max~0.01"]
    return dirs


def test_files_of_the_tiny_config():
    files = manifest_of().files()
    assert {f"problem/{p}" for p in PROBLEMS} <= set(files)
    assert files["vocab/owt"] == "results-tiny/tokenizers/owt/vocab.json"
    assert files["valid_text/owt"] == "results-tiny/synthetic/owt/valid.txt", "the synthesized text"
    assert files["valid_tokens/tinystories"] == "results-tiny/tokens/tinystories/valid.npy"
    assert files["bpe_benchmark/owt"] == "results-tiny/benchmarks/train_bpe/owt.tsv"
    assert files["bpe_stats/owt"] == "results-tiny/tokenizers/owt/train_stats.json"
    assert files["tokenizer_stats"] == "results-tiny/tables/tokenizer_stats.csv"
    assert files["selection/lr_sweep"] == "results-tiny/selections/lr_sweep.json"
    assert files["generation_grid"] == "results-tiny/samples/generation_grid.csv"
    assert {k for k in files if k.startswith("samples/")} == {"samples/ts_main/main", "samples/owt_main/main"}


def test_the_workflow_may_say_where_a_text_is():
    config = yaml.safe_load(TINY.read_text())
    manifest = ReportManifest(config, Design(config), Layout("r"), REFERENCE, corpus_text=lambda d, s: f"/data/{d}.{s}")
    assert manifest.files()["valid_text/owt"] == "/data/owt.valid"


def test_figures_follow_the_roles_and_files_the_config_has():
    assert set(manifest_of().figures_made()) == set(all_figures())
    without_grid = manifest_of(lambda c: c["generate"].pop("grid"))
    assert "generation_grid" not in without_grid.files() and "generation_grid" not in without_grid.figures_made()
    without_sweep = manifest_of(lambda c: c["report"].pop("lr_sweep"))
    assert not {"lr_sweep", "lr_edge"} & set(without_sweep.figures_made())
    assert "selection/lr_sweep" not in without_sweep.files()
    nothing_sampled = manifest_of(lambda c: c["report"].pop("samples"))
    assert nothing_sampled.grid_run() is None and "generation_grid" not in nothing_sampled.files()
    assert manifest_of().grid_run() == ("ts_main", "main")


def test_an_ablation_figure_gets_the_baseline_and_its_own_variants_only():
    manifest = manifest_of()
    spec = manifest.figure_manifest("layer_norm_ablation", run_dirs(manifest))
    assert spec["roles"] == {"ablations": ["ablations"]} and spec["baseline"] == "baseline"
    assert spec["experiments"] == {"ablations": {"baseline": "results-tiny/runs/lr_sweep/lr_max~0.01",
                                                 "no_rmsnorm": "results-tiny/runs/ablations/no_rmsnorm",
                                                 "no_rmsnorm_low_lr": "results-tiny/runs/ablations/no_rmsnorm_low_lr"}}
    assert spec["files"] == {} and spec["reference"] == REFERENCE
    main = manifest.figure_manifest("main_experiment", run_dirs(manifest))
    assert set(main["files"]) == {"valid_text/tinystories", "valid_text/owt", "valid_tokens/tinystories",
                                  "valid_tokens/owt"}
    assert manifest.figure_category("layer_norm_ablation") == "7.3 layer_norm_ablation"


def test_the_writeups_manifest_reads_back_as_report_inputs():
    manifest = manifest_of()
    dirs = run_dirs(manifest)
    spec = manifest.report_manifest(dirs)
    assert set(spec["roles"]) == set(ROLES) and spec["roles"]["main"] == ["ts_main", "owt_main"]
    assert spec["files"]["figure/lr_edge"] == "results-tiny/figures/lr_edge.png"
    assert spec["datasets"]["owt"] == {"source": "synthetic (web style, 150,000 bytes, seed 3)", "synthetic": True,
                                       "vocab_size": 450, "special_tokens": ["<|endoftext|>"],
                                       "urls": {"train": None, "valid": None}, "sha256": {"train": None, "valid": None},
                                       "train_text": "results-tiny/synthetic/owt/train.txt"}
    assert spec["experiment_datasets"]["leaderboard"] == "owt"
    inputs = ReportInputs.from_dict(copy.deepcopy(spec))
    assert inputs.runs("main") == {"ts_main": "results-tiny/runs/ts_main/main",
                                   "owt_main": "results-tiny/runs/owt_main/main"}
    assert inputs.results_root == "results-tiny" and inputs.datasets_of("main") == ["owt", "tinystories"]


def test_run_files_name_a_shared_directory_once():
    dirs = {"a": {"x": "r/runs/a/x", "y": "r/runs/a/x"}, "b": {"z": "r/runs/b/z"}}
    assert run_files(dirs) == ["r/runs/a/x/metrics.jsonl", "r/runs/a/x/summary.json",
                               "r/runs/b/z/metrics.jsonl", "r/runs/b/z/summary.json"]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda c: c["report"].update(main=["ts_main", "owt_mian"]),
     r"report.main = 'owt_mian' is not an experiment \(defined: lr_sweep, "),
    (lambda c: c["report"].update(ablation_baseline="base"),
     "report.ablation_baseline = 'base' is not a variant of experiments.ablations"),
])
def test_a_report_section_naming_what_is_not_there_is_an_error(edit, message):
    with pytest.raises(ConfigError, match=message):
        manifest_of(edit)
