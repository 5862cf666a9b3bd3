"""What the report needs: the manifest (cs336lm.reporting.inputs) telling each report rule which files of the
results tree answer which deliverable of the registry (cs336lm.reporting.registry); no rules here."""

import re
from pathlib import Path

from cs336lm.reporting.inputs import ROLES
from cs336lm.problems.answers import PROBLEMS
from cs336lm.reporting.registry import DELIVERABLES, all_figures


REPORT = config["report"]
REFERENCE = str(Path(workflow.current_basedir).parent / "report" / "reference.yaml")


def check_report_layout():
    """Every experiment the report section names must exist, and the ablation baseline must be one of its runs."""
    for key, value in REPORT.items():
        for experiment in value if isinstance(value, list) else [value]:
            if key in ROLES and experiment is not None and experiment not in config["experiments"]:
                raise ConfigError(f"report.{key} = {experiment!r} is not an experiment "
                                  f"(defined: {', '.join(config['experiments'])})")
    ablations = REPORT.get("ablations")
    if ablations and REPORT["ablation_baseline"] not in DESIGN.experiments[ablations].variants:
        raise ConfigError(f"report.ablation_baseline = {REPORT['ablation_baseline']!r} is not a variant of "
                          f"experiments.{ablations}")


check_report_layout()


# ---- the manifest: which file answers what -----------------------------------------------------------------

def role_experiments():
    """{role: [experiment, ...]} from the config's report section (a role may name one experiment or a list)."""
    roles = {}
    for role in ROLES:
        value = REPORT.get(role)
        roles[role] = [] if value is None else value if isinstance(value, list) else [value]
    return roles


def all_run_dirs(wildcards=None):
    """{experiment: {variant: run dir}} for every run the report shows, in config order: names trained once share
    a directory, and the runs an edge search or `max` added are there (checkpoint-aware: call it from input and
    params functions only)."""
    return {experiment: run_dirs(experiment) for experiment in config["experiments"]}


def all_run_files(wildcards):
    return run_files(all_run_dirs())


def dataset_facts():
    """{dataset: {source, synthetic, vocab_size, special_tokens}}: what the report says about each corpus."""
    return {d: {"source": describe_source(spec["train"]), "synthetic": "synthetic" in spec["train"],
                "vocab_size": spec["tokenizer"]["vocab_size"], "special_tokens": special_tokens(d)}
            for d, spec in config["data"].items()}


def grid_run():
    """(experiment, variant) whose model the generation grid samples: the first run of report.samples."""
    for experiment in role_experiments()["samples"]:
        return experiment, next(iter(DESIGN.experiments[experiment].variants))
    return None


def report_files():
    """{manifest key: path} of every file this configuration makes for the report (keys as in ReportInputs)."""
    files = {f"problem/{name}": f"{ROOT}/problems/{name}.csv" for name in PROBLEMS}
    files["tokenizer_stats"] = f"{ROOT}/tables/tokenizer_stats.csv"
    for dataset in config["data"]:
        tokenizer = f"{ROOT}/tokenizers/{dataset}"
        files |= {f"vocab/{dataset}": f"{tokenizer}/vocab.json", f"merges/{dataset}": f"{tokenizer}/merges.txt",
                  f"bpe_benchmark/{dataset}": f"{ROOT}/benchmarks/train_bpe/{dataset}.tsv",
                  f"valid_text/{dataset}": corpus_text(dataset, "valid"),
                  f"valid_tokens/{dataset}": f"{ROOT}/tokens/{dataset}/valid.npy",
                  f"bpe_stats/{dataset}": f"{tokenizer}/train_stats.json"}
    for experiment in role_experiments()["samples"]:
        for variant in DESIGN.experiments[experiment].variants:
            files[f"samples/{experiment}/{variant}"] = f"{ROOT}/samples/{experiment}/{variant}.md"
    for experiment in role_experiments()["lr_sweep"][:1]:
        if DESIGN.experiments[experiment].grid_key:  # a sweep over one key: its choice, rule and edge
            files["selection/lr_sweep"] = selection_file(experiment)
    for experiment, spec in DESIGN.experiments.items():
        if spec.seeds:
            files[f"noise/{experiment}"] = noise_file(experiment)
    if grid_run() and config["generate"].get("grid"):
        files["generation_grid"] = f"{ROOT}/samples/generation_grid.csv"
    return files


def expand_keys(keys):
    """Manifest keys with `{dataset}` expanded over the config's datasets."""
    return [k.format(dataset=d) for k in keys for d in (config["data"] if "{dataset}" in k else [None])]


def figures_made():
    """{name: Figure} of the registry's figures this configuration can draw (their runs and files exist)."""
    roles, files = role_experiments(), report_files()
    return {name: f for name, f in all_figures().items()
            if all(roles.get(r) for r in f.roles) and all(k in files for k in expand_keys(f.files))}


def manifest(roles, files):
    """The ReportInputs (as a dict) of some roles' runs and some files."""
    all_roles = role_experiments()
    experiments = {e for r in roles for e in all_roles[r]}
    return {"results_root": ROOT, "experiments": {e: v for e, v in all_run_dirs().items() if e in experiments},
            "roles": {r: all_roles[r] for r in roles}, "baseline": REPORT.get("ablation_baseline"),
            "datasets": dataset_facts(), "experiment_datasets": {e: x.dataset for e, x in DESIGN.experiments.items()},
            "files": files, "reference": REFERENCE}


def run_files(experiments):
    """The metrics and summary files of {experiment: {variant: run dir}}, a directory two names share once."""
    dirs = dict.fromkeys(d for variants in experiments.values() for d in variants.values())
    return [f"{d}/{name}" for d in dirs for name in ("metrics.jsonl", "summary.json")]


def figure_manifest(wildcards):
    """The manifest of one figure: its roles' runs (narrowed by `only`, so an ablation's figure reruns only when
    its own runs change) and the files it reads."""
    figure = all_figures()[wildcards.figure]
    files = report_files()
    keys = expand_keys(figure.files + figure.optional)
    spec = manifest(figure.roles, {k: files[k] for k in keys if k in files})
    if figure.only is not None:
        key, value = figure.only
        spec["experiments"] = {e: {v: d for v, d in variants.items()
                                   if v == spec["baseline"] or DESIGN.run(e, v).config.to_flat()[key] == value}
                               for e, variants in spec["experiments"].items()}
    return spec


def figure_inputs(wildcards):
    spec = figure_manifest(wildcards)
    return [*run_files(spec["experiments"]), *spec["files"].values()]


def figure_caption(wildcards):
    return all_figures()[wildcards.figure].caption


def figure_category(wildcards):
    """The deliverable a figure belongs to, as the HTML report's category."""
    deliverable = next(d for d in DELIVERABLES if any(f.name == wildcards.figure for f in d.figures))
    return f"{deliverable.section} {deliverable.name}"


def report_manifest(wildcards=None):
    files = report_files() | {f"figure/{name}": f"{ROOT}/figures/{name}.png" for name in figures_made()}
    return manifest(ROLES, files)


def report_inputs(wildcards):
    """The writeup's files but the runs': known before anything trains, so a dry run lists the jobs making them."""
    files = report_files() | {f"figure/{name}": f"{ROOT}/figures/{name}.png" for name in figures_made()}
    return [*files.values(), REFERENCE]


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
    return [f"{ROOT}/report.md", f"{ROOT}/tables/runs.csv"]


def grid_model_inputs(wildcards):
    """The model and tokenizer of the run the generation grid samples (the first run of report.samples)."""
    experiment, variant = grid_run()
    dataset = DESIGN.experiments[experiment].dataset
    return {"model": f"{trained_dir(experiment, variant)}/model.pt",
            "vocab": f"{ROOT}/tokenizers/{dataset}/vocab.json", "merges": f"{ROOT}/tokenizers/{dataset}/merges.txt"}


def grid_special_tokens(wildcards):
    experiment, _ = grid_run()
    return special_tokens(DESIGN.experiments[experiment].dataset)
