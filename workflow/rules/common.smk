"""Config validation, the runs table and the helpers the rules call; no rules here (DESIGN §3, §4)."""

import itertools
import math
from dataclasses import dataclass

from snakemake.utils import validate

from cs336lm.config import ConfigError, RunConfig

validate(config, "../schemas/config.schema.yaml")

ROOT = config["results_root"].rstrip("/")
SPLITS = ("train", "valid")
DEFAULTS = dict(config["defaults"])
DEFAULT_DATASET = DEFAULTS.pop("dataset", "tinystories")
CODE_VERSION = DEFAULTS.pop("code_version", 0)
try:
    BASE_CONFIG = RunConfig.from_dict(DEFAULTS)
except ConfigError as error:
    raise error.located(lambda key: f"defaults.{key}") from None


@dataclass(frozen=True)
class Run:
    experiment: str
    variant: str
    dataset: str
    config: RunConfig


def variant_slug(overrides):
    """`{"optim.lr_max": 0.001}` -> `lr_max~0.001`: names a grid point by its last key parts and values."""
    return "__".join(f"{key.rpartition('.')[2]}~{value:g}" if isinstance(value, float) else
                     f"{key.rpartition('.')[2]}~{value}" for key, value in overrides.items())


def experiment_variants(name, spec):
    """The {variant: dotted overrides} of one experiment, from its `grid` (a product) or its `variants`."""
    if "grid" in spec:
        keys = list(spec["grid"])
        points = [dict(zip(keys, values)) for values in itertools.product(*spec["grid"].values())]
        variants = {variant_slug(point): point for point in points}
    else:
        variants = {variant: overrides or {} for variant, overrides in spec["variants"].items()}
    if not variants:
        raise ConfigError(f"experiments.{name} has no variants: give its grid values or at least one variant")
    return variants


def written_at(experiment, spec, variant, dataset):
    """key -> where the config file sets that run key, so an error names the line to fix (`defaults.optim.lr_min`)."""
    place, overrides = ("grid", spec["grid"]) if "grid" in spec else (f"variants.{variant}", spec["variants"][variant])

    def where(key):
        if key == "model.vocab_size":
            return f"data.{dataset}.tokenizer.vocab_size"
        if key in (overrides or {}):
            return f"experiments.{experiment}.{place}.{key}"
        if key in spec.get("base", {}):
            return f"experiments.{experiment}.base.{key}"
        return f"defaults.{key}"
    return where


def build_run(experiment, variant, dataset, overrides, where):
    """One run's RunConfig; model.vocab_size always comes from the dataset's tokenizer."""
    vocab_size = config["data"][dataset]["tokenizer"]["vocab_size"]
    written = overrides.get("model.vocab_size", DEFAULTS.get("model", {}).get("vocab_size", vocab_size))
    if written != vocab_size:
        raise ConfigError(f"experiments.{experiment}: model.vocab_size = {written!r} differs from "
                          f"data.{dataset}.tokenizer.vocab_size = {vocab_size}; leave model.vocab_size out")
    try:
        run_config = RunConfig.from_flat({**overrides, "model.vocab_size": vocab_size}, base=BASE_CONFIG)
    except ConfigError as error:
        raise ConfigError(f"{error.located(where)} (run {experiment}/{variant})") from None
    return Run(experiment, variant, dataset, run_config)


def build_runs():
    """The runs table: {(experiment, variant): Run}, every config built now so that a typo fails `snakemake -n`."""
    runs = {}
    for name, spec in config["experiments"].items():
        dataset = spec.get("dataset", DEFAULT_DATASET)
        if dataset not in config["data"]:
            raise ConfigError(f"experiments.{name}.dataset = {dataset!r} is not defined under data "
                              f"(defined: {', '.join(config['data'])})")
        for variant, overrides in experiment_variants(name, spec).items():
            runs[name, variant] = build_run(name, variant, dataset, {**spec.get("base", {}), **overrides},
                                            written_at(name, spec, variant, dataset))
    return runs


if DEFAULT_DATASET not in config["data"]:
    raise ConfigError(f"defaults.dataset = {DEFAULT_DATASET!r} is not defined under data")
RUNS = build_runs()


# ---- paths and inputs ------------------------------------------------------------------------------------

def corpus_text(dataset, split):
    """Where a corpus split's text comes from: the download or the synthesizer."""
    source = "synthetic" if "synthetic" in config["data"][dataset][split] else "downloads"
    return f"{ROOT}/{source}/{dataset}/{split}.txt"


def corpus_text_of(wildcards):
    return corpus_text(wildcards.dataset, wildcards.split)


def train_text_of_dataset(wildcards):
    return corpus_text(wildcards.dataset, "train")


def run_dir(experiment, variant):
    return f"{ROOT}/runs/{experiment}/{variant}"


def run_of(wildcards):
    return RUNS[wildcards.experiment, wildcards.variant]


def tokens_of_run(wildcards):
    """The train/valid token files of the run's dataset."""
    dataset = run_of(wildcards).dataset
    return {split: f"{ROOT}/tokens/{dataset}/{split}.npy" for split in SPLITS}


def tokenizer_of_run(wildcards):
    dataset = run_of(wildcards).dataset
    return {"vocab": f"{ROOT}/tokenizers/{dataset}/vocab.json", "merges": f"{ROOT}/tokenizers/{dataset}/merges.txt"}


def flat_config_of_run(wildcards):
    """The run's full resolved config as dotted keys: a param, so changing one value reruns that run only."""
    return run_of(wildcards).config.to_flat()


def special_tokens(dataset):
    return config["data"][dataset]["tokenizer"].get("special_tokens", ["<|endoftext|>"])


def special_tokens_of_run(wildcards):
    return special_tokens(run_of(wildcards).dataset)


def train_runtime_minutes(wildcards, attempt):
    """Cluster minutes for train_lm: the token budget at the estimated throughput (or the wall-clock budget)."""
    estimate, train = config["resources"]["estimate"], run_of(wildcards).config.train
    seconds = train.wall_clock_budget_s or train.token_budget / estimate["train_tokens_per_s"]
    return max(estimate["min_minutes"], math.ceil(seconds / 60 * estimate["margin"])) * attempt


def data_threads():
    # Snakemake scales threads down to --cores on local runs; on Slurm there is no total core count to read.
    return config["threads"]["data_max"]


# ---- data and tokenizer rules ------------------------------------------------------------------------

def source_url(wildcards):
    return config["data"][wildcards.dataset][wildcards.split]["url"]


def source_sha256(wildcards):
    return config["data"][wildcards.dataset][wildcards.split].get("sha256")


def synthetic_spec(wildcards):
    return config["data"][wildcards.dataset][wildcards.split]["synthetic"]


def tokenizer_vocab_size(wildcards):
    return config["data"][wildcards.dataset]["tokenizer"]["vocab_size"]


def special_tokens_of_dataset(wildcards):
    return special_tokens(wildcards.dataset)


def num_shards(dataset):
    return config["data"][dataset].get("shards", 1)


def num_shards_of_dataset(wildcards):
    return num_shards(wildcards.dataset)


def pretoken_counts_of_dataset(wildcards):
    """One pre-token counts file per shard of the dataset's train split."""
    return [f"{ROOT}/tokenizers/{wildcards.dataset}/pretokens/{shard}.json"
            for shard in range(num_shards(wildcards.dataset))]


def token_shards_of(wildcards):
    """One token file per shard of the split, in order."""
    return [f"{ROOT}/tokens/{wildcards.dataset}/{wildcards.split}.shards/{shard}.npy"
            for shard in range(num_shards(wildcards.dataset))]


def tokenizer_stats_inputs(wildcards):
    """Each dataset's tokenizer files and validation text, named `<kind>_<dataset>`."""
    inputs = {}
    for dataset in config["data"]:
        inputs[f"vocab_{dataset}"] = f"{ROOT}/tokenizers/{dataset}/vocab.json"
        inputs[f"merges_{dataset}"] = f"{ROOT}/tokenizers/{dataset}/merges.txt"
        inputs[f"text_{dataset}"] = corpus_text(dataset, "valid")
    return inputs
