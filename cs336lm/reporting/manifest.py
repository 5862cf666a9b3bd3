"""The report's manifest from a workflow config: which files of the results tree answer which deliverable of the
registry (cs336lm.reporting.registry), as the dict that the figure and writeup jobs read back as ReportInputs.

Which runs a name's files are in is known only once the sweeps have chosen (a sweep's winner, the values an edge
search adds), so the workflow passes them in: {experiment: {variant: run dir}}. Everything else follows from the
config, the Design and the Layout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cs336lm.config import ConfigError
from cs336lm.corpora.sources import describe_source, special_tokens
from cs336lm.experiments.design import Design
from cs336lm.layout import SPLITS, Layout
from cs336lm.problems.answers import PROBLEMS
from cs336lm.reporting.inputs import ROLES
from cs336lm.reporting.registry import DELIVERABLES, Figure, all_figures

RunDirs = Mapping[str, Mapping[str, str]]  # {experiment: {variant: run dir}}


class ReportManifest:
    """The report of one workflow config: its roles' experiments, the files it reads and the figures it draws.

    `corpus_text(dataset, split)` says where a split's text is (the workflow decides); by default, the download
    or the synthesized text under the layout.
    """

    def __init__(self, config: Mapping[str, Any], design: Design, layout: Layout, reference: str,
                 corpus_text: Callable[[str, str], str] | None = None):
        self.config, self.design, self.layout, self.reference = config, design, layout, reference
        self.report = config["report"]
        self.corpus_text = corpus_text or (
            lambda dataset, split: layout.corpus_text(dataset, split, "synthetic" in config["data"][dataset][split]))
        self.check()

    def check(self) -> None:
        """Every experiment the report section names must exist, the main runs must train the same model for the
        same iterations, and the ablation baseline must be one of its runs."""
        for key, value in self.report.items():
            for experiment in value if isinstance(value, list) else [value]:
                if key in ROLES and experiment is not None and experiment not in self.config["experiments"]:
                    raise ConfigError(f"report.{key} = {experiment!r} is not an experiment "
                                      f"(defined: {', '.join(self.config['experiments'])})")
        main = self.report.get("main") or []
        self.design.check_same_training(
            main if isinstance(main, list) else [main],
            "report.main compares runs of the same model and total iterations (handout §7.4: \"the same model "
            "architecture and total training iterations as TinyStories\")")
        ablations = self.report.get("ablations")
        if ablations and self.report["ablation_baseline"] not in self.design.experiments[ablations].variants:
            raise ConfigError(f"report.ablation_baseline = {self.report['ablation_baseline']!r} is not a variant of "
                              f"experiments.{ablations}")

    # ---- what the config asks of the report -------------------------------------------------------------------

    def role_experiments(self) -> dict[str, list[str]]:
        """{role: [experiment, ...]} from the config's report section (a role may name one experiment or a list)."""
        roles = {}
        for role in ROLES:
            value = self.report.get(role)
            roles[role] = [] if value is None else value if isinstance(value, list) else [value]
        return roles

    def dataset_facts(self) -> dict[str, dict[str, Any]]:
        """{dataset: {source, synthetic, vocab_size, special_tokens, urls, sha256, train_text}}: what the report
        says about each corpus (cs336lm.reporting.provenance checks the URLs against the course's)."""
        return {d: {"source": describe_source(spec["train"]), "synthetic": "synthetic" in spec["train"],
                    "vocab_size": spec["tokenizer"]["vocab_size"], "special_tokens": special_tokens(spec),
                    "urls": {split: spec[split].get("url") for split in SPLITS},
                    "sha256": {split: spec[split].get("sha256") for split in SPLITS},
                    "train_text": self.corpus_text(d, "train")}
                for d, spec in self.config["data"].items()}

    def grid_run(self) -> tuple[str, str] | None:
        """(experiment, variant) whose model the generation grid samples: the first run of report.samples."""
        for experiment in self.role_experiments()["samples"]:
            return experiment, next(iter(self.design.experiments[experiment].variants))
        return None

    def files(self) -> dict[str, str]:
        """{manifest key: path} of every file this configuration makes for the report (keys as in ReportInputs),
        figures aside."""
        layout = self.layout
        files = {f"problem/{name}": layout.problem(name) for name in PROBLEMS}
        files["tokenizer_stats"] = layout.table("tokenizer_stats")
        for dataset in self.config["data"]:
            files |= {f"vocab/{dataset}": layout.vocab(dataset), f"merges/{dataset}": layout.merges(dataset),
                      f"bpe_benchmark/{dataset}": layout.benchmark("train_bpe", dataset),
                      f"valid_text/{dataset}": self.corpus_text(dataset, "valid"),
                      f"valid_tokens/{dataset}": layout.tokens(dataset, "valid"),
                      f"bpe_stats/{dataset}": layout.bpe_stats(dataset)}
        roles = self.role_experiments()
        for experiment in roles["samples"]:
            for variant in self.design.experiments[experiment].variants:
                files[f"samples/{experiment}/{variant}"] = layout.samples(experiment, variant)
                files[f"sample_scores/{experiment}/{variant}"] = layout.sample_scores(experiment, variant)
        for experiment in roles["lr_sweep"][:1]:
            if self.design.experiments[experiment].grid_key:  # a sweep over one key: its choice, rule and edge
                files["selection/lr_sweep"] = layout.selection(experiment)
        combined = {spec.combine for spec in self.design.experiments.values()}
        for experiment, spec in self.design.experiments.items():
            # Candidates that a run combines are judged against their own noise floor (in their combination
            # file), at their own budget: it is not pooled into the report's.
            if spec.seeds and experiment not in combined:
                files[f"noise/{experiment}"] = layout.noise(experiment)
        for experiment in roles["leaderboard"][:1]:
            combine = self.design.experiments[experiment].combine
            if combine:  # the candidates' effects and what the leaderboard run combines
                files["combination/leaderboard"] = layout.combination(combine)
        if self.grid_run() and self.config["generate"].get("grid"):
            files["generation_grid"] = layout.generation_grid()
        return files

    def expand_keys(self, keys: Iterable[str]) -> list[str]:
        """Manifest keys with `{dataset}` expanded over the config's datasets."""
        data = self.config["data"]
        return [k.format(dataset=d) for k in keys for d in (data if "{dataset}" in k else [None])]

    def figures_made(self) -> dict[str, Figure]:
        """{name: Figure} of the registry's figures this configuration can draw (their runs and files exist)."""
        roles, files = self.role_experiments(), self.files()
        return {name: f for name, f in all_figures().items()
                if all(roles.get(r) for r in f.roles) and all(k in files for k in self.expand_keys(f.files))}

    def report_files(self) -> dict[str, str]:
        """Every file the writeup reads but the runs': known before anything trains, so a dry run lists the jobs
        making them."""
        return self.files() | {f"figure/{name}": self.layout.figure(name) for name in self.figures_made()}

    # ---- manifests -------------------------------------------------------------------------------------------

    def manifest(self, roles: Iterable[str], files: Mapping[str, str], run_dirs: RunDirs) -> dict[str, Any]:
        """The ReportInputs (as a dict) of some roles' runs and some files."""
        all_roles = self.role_experiments()
        experiments = {e for r in roles for e in all_roles[r]}
        return {"results_root": self.layout.root,
                "experiments": {e: v for e, v in run_dirs.items() if e in experiments},
                "roles": {r: all_roles[r] for r in roles}, "baseline": self.report.get("ablation_baseline"),
                "datasets": self.dataset_facts(),
                "experiment_datasets": {e: x.dataset for e, x in self.design.experiments.items()},
                "files": dict(files), "reference": self.reference}

    def figure_manifest(self, name: str, run_dirs: RunDirs) -> dict[str, Any]:
        """The manifest of one figure: its roles' runs (narrowed by `only`, so an ablation's figure reruns only
        when its own runs change) and the files it reads."""
        figure = all_figures()[name]
        files = self.files()
        keys = self.expand_keys(figure.files + figure.optional)
        spec = self.manifest(figure.roles, {k: files[k] for k in keys if k in files}, run_dirs)
        if figure.only is not None:
            key, value = figure.only
            spec["experiments"] = {
                e: {v: d for v, d in variants.items()
                    if v == spec["baseline"] or self.design.run(e, v).config.to_flat()[key] == value}
                for e, variants in spec["experiments"].items()}
        return spec

    def report_manifest(self, run_dirs: RunDirs) -> dict[str, Any]:
        """The writeup's manifest: every file, and every experiment's runs (its experiment log lists each trained
        run, those of experiments no deliverable shows, such as the leaderboard's candidates, included)."""
        return self.manifest(ROLES, self.report_files(), run_dirs) | {"experiments": dict(run_dirs)}

    def figure_category(self, name: str) -> str:
        """The deliverable a figure belongs to, as the HTML report's category."""
        deliverable = next(d for d in DELIVERABLES if any(f.name == name for f in d.figures))
        return f"{deliverable.section} {deliverable.name}"


def run_files(experiments: RunDirs) -> list[str]:
    """The metrics and summary files of {experiment: {variant: run dir}}, a directory two names share once."""
    dirs = dict.fromkeys(d for variants in experiments.values() for d in variants.values())
    return [path for d in dirs for path in (Layout.metrics(d), Layout.summary(d))]
