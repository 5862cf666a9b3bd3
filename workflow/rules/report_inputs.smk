"""What the report needs: the manifest (cs336lm.reporting.manifest) telling each report rule which files of the
results tree answer which deliverable, wired to the runs that the sweeps decide (checkpoint-aware); no rules here."""

import re
from pathlib import Path

from cs336lm.problems.answers import PROBLEMS
from cs336lm.reporting.manifest import ReportManifest, run_files
from cs336lm.reporting.registry import all_figures


REPORT = ReportManifest(config, DESIGN, LAYOUT, str(Path(workflow.current_basedir).parent / "report" / "reference.yaml"),
                        corpus_text=corpus_text)


def figures_made():
    return REPORT.figures_made()


def all_run_dirs(wildcards=None):
    """{experiment: {variant: run dir}} for every run the report shows, in config order: names trained once share
    a directory, and the runs an edge search or `max` added are there (checkpoint-aware: call it from input and
    params functions only)."""
    return {experiment: run_dirs(experiment) for experiment in config["experiments"]}


def all_run_files(wildcards):
    return run_files(all_run_dirs())


def figure_manifest(wildcards):
    return REPORT.figure_manifest(wildcards.figure, all_run_dirs())


def figure_inputs(wildcards):
    spec = figure_manifest(wildcards)
    return [*run_files(spec["experiments"]), *spec["files"].values()]


def figure_caption(wildcards):
    return all_figures()[wildcards.figure].caption


def figure_category(wildcards):
    return REPORT.figure_category(wildcards.figure)


def report_manifest(wildcards=None):
    return REPORT.report_manifest(all_run_dirs())


def report_inputs(wildcards):
    """The writeup's files but the runs': known before anything trains, so a dry run lists the jobs making them."""
    return [*REPORT.report_files().values(), REPORT.reference]


def report_run_files(wildcards):
    """The metrics and summaries of the runs the writeup reads (checkpoint-aware)."""
    return run_files(report_manifest()["experiments"])


def problem_texts(wildcards):
    """The validation texts a written problem reads (unicode2 measures their encodings), by dataset."""
    if wildcards.problem != "unicode2":
        return {}
    return {dataset: corpus_text(dataset, "valid") for dataset in config["data"]}


def final_outputs():
    """The default target: the writeup (which needs every figure, table and sample) and the runs table."""
    return [LAYOUT.report(), LAYOUT.table("runs")]


def grid_model_inputs(wildcards):
    """The model and tokenizer of the run the generation grid samples (the first run of report.samples)."""
    experiment, variant = REPORT.grid_run()
    dataset = DESIGN.experiments[experiment].dataset
    return {"model": LAYOUT.model(trained_dir(experiment, variant)), "vocab": LAYOUT.vocab(dataset),
            "merges": LAYOUT.merges(dataset)}


def grid_special_tokens(wildcards):
    experiment, _ = REPORT.grid_run()
    return special_tokens(DESIGN.experiments[experiment].dataset)
