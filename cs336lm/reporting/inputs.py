"""The report's manifest as the figure and writeup jobs read it: which files of the results tree answer which
deliverable. The workflow builds it from the config (cs336lm.reporting.manifest) and passes it to those scripts,
so the writeup is a function of these files alone and never builds a run path itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cs336lm.experiments.selection import Selection
from cs336lm.layout import Layout
from cs336lm.reporting.runs import read_run, read_selections

# The experiments' roles in the handout; a config maps each to its experiments (report: in config.yaml).
ROLES = ("lr_sweep", "batch_size", "ablations", "main", "leaderboard", "samples")


@dataclass(frozen=True)
class ReportInputs:
    """experiments: {experiment: {variant: run dir}}; roles: {role: [experiment, ...]}; baseline: the ablation
    baseline's variant; datasets: {dataset: {"source": text, "synthetic": bool, "vocab_size": int,
    "special_tokens": [...], "urls": {split: url}, "sha256": {split: digest or None}, "train_text": path}};
    experiment_datasets: {experiment: dataset}; files: {key: path} (keys like `problem/unicode1`,
    `bpe_benchmark/owt`, `figure/lr_sweep`); reference: the reference-numbers YAML."""

    results_root: str
    experiments: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    roles: Mapping[str, list[str]] = field(default_factory=dict)
    baseline: str | None = None
    datasets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    experiment_datasets: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    reference: str | None = None
    _summaries: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ReportInputs:
        return cls(**{key: values[key] for key in cls.__dataclass_fields__ if key in values})

    # ---- runs --------------------------------------------------------------------------------------------

    def members(self, role: str) -> list[tuple[str, str, str, str]]:
        """(label, experiment, variant, run dir) of a role's runs, labelled by variant when the role has one
        experiment, otherwise by experiment (one variant) or experiment/variant."""
        experiments = [e for e in self.roles.get(role, []) if e in self.experiments]
        members = []
        for experiment in experiments:
            variants = self.experiments[experiment]
            for variant, run_dir in variants.items():
                label = variant if len(experiments) == 1 else experiment if len(variants) == 1 else \
                    f"{experiment}/{variant}"
                members.append((label, experiment, variant, run_dir))
        return members

    def runs(self, role: str) -> dict[str, str]:
        """{label: run dir} of a role's runs (labels as in `members`)."""
        return {label: run_dir for label, _, _, run_dir in self.members(role)}

    def summaries(self, role: str) -> dict[str, Any]:
        return {label: self.summary(run_dir) for label, run_dir in self.runs(role).items()}

    def all_summaries(self) -> dict[tuple[str, str], Any]:
        return {(e, v): self.summary(d) for e, variants in self.experiments.items() for v, d in variants.items()}

    def summary(self, run_dir: str) -> Any:
        """A run's summary, read once (two names may share one trained run directory)."""
        if run_dir not in self._summaries:
            self._summaries[run_dir] = read_run(run_dir)
        return self._summaries[run_dir]

    def has(self, role: str) -> bool:
        return bool(self.runs(role))

    # ---- files and data ----------------------------------------------------------------------------------

    def file(self, key: str) -> Path | None:
        """The file behind a manifest key, or None when this configuration does not make it."""
        path = self.files.get(key)
        return Path(path) if path is not None and Path(path).exists() else None

    def files_under(self, prefix: str) -> dict[str, Path]:
        """{rest of the key: path} of every existing file whose key starts with `prefix/`."""
        return {key[len(prefix) + 1:]: path for key in self.files if key.startswith(prefix + "/")
                if (path := self.file(key)) is not None}

    def tuning(self, experiment: str, variant: str) -> Path | None:
        """The selection file of a variant that its own small sweep tuned (`tune:` in the config), which the
        workflow writes before training the runs that use it (`selections/<experiment>/<variant>.json`), or None."""
        path = Path(Layout(self.results_root).selection(f"{experiment}/{variant}"))
        return path if path.exists() else None

    def selections(self) -> list[Selection]:
        """Every sweep's selection file under `selections/` (cs336lm.reporting.runs.read_selections)."""
        return read_selections(Path(self.results_root) / "selections")

    def relative(self, path: str | Path) -> str:
        """A results-tree path as the reader finds it: relative to the results root."""
        try:
            return Path(path).resolve().relative_to(Path(self.results_root).resolve()).as_posix()
        except ValueError:
            return Path(path).as_posix()

    def datasets_of(self, role: str) -> list[str]:
        return sorted({self.experiment_datasets[e] for e in self.roles.get(role, []) if e in self.experiment_datasets})

    def special_tokens(self, dataset: str) -> list[str]:
        return list(self.datasets.get(dataset, {}).get("special_tokens", ["<|endoftext|>"]))

    def synthetic(self, datasets: list[str]) -> bool | None:
        """True if every dataset is the embedded synthetic demo text, False if none is, None if mixed or none."""
        kinds = {bool(self.datasets[d].get("synthetic")) for d in datasets if d in self.datasets}
        return kinds.pop() if len(kinds) == 1 else None

