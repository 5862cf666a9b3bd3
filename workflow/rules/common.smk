"""Config validation, the runs (cs336lm.experiments.design.Design) and the helpers the rules call; no rules here.

Every path comes from the results layout (cs336lm.layout.Layout); which directory holds a name's files is decided
here and nowhere else: a name that another run trains (the same run, or a sweep's winner) maps to that run's
directory. Helpers marked *checkpoint-aware* read sweep plans, probes and selections once they exist; until then
Snakemake schedules the checkpoint that writes them and asks again.
"""

import json
import os

from snakemake.utils import validate

from cs336lm.config import ConfigError
from cs336lm.corpora.sources import describe_source
from cs336lm.corpora.sources import special_tokens as dataset_special_tokens
from cs336lm.experiments.combination import read_combination
from cs336lm.experiments.cost import Machine, request_minutes
from cs336lm.experiments.dedup import SameAs, Trains, WinnerOf
from cs336lm.experiments.design import Design, fill_batch_sizes
from cs336lm.experiments.selection import read_plan, read_selection
from cs336lm.layout import SPLITS, Layout

validate(config, "../schemas/config.schema.yaml")

LAYOUT = Layout(config["results_root"])
DESIGN = Design(config)
DEFAULT_DATASET = DESIGN.default_dataset
CODE_VERSION = config["defaults"].get("code_version", 0)
MACHINE = Machine.from_config(config["machine"]) if config.get("machine") else None


# ---- what sweeps, probes and selections decided (checkpoint-aware) ---------------------------------------

def chosen(sweep):
    """The Selection a sweep made (cs336lm.experiments.selection)."""
    return read_selection(checkpoints.select_best.get(sweep=sweep).output.selection)


def combined(experiment):
    """The Combination a candidates experiment chose (cs336lm.experiments.combination)."""
    return read_combination(checkpoints.select_combination.get(experiment=experiment).output.combination)


def search_plans(experiment, rounds=None):
    """The plan files of a sweep's search, in order, through `rounds` rounds (default: through its last plan, the
    one that adds nothing)."""
    paths = []
    while rounds is None or len(paths) < rounds:
        paths.append(checkpoints.plan_sweep.get(experiment=experiment, round=len(paths)).output.plan)
        if not read_plan(paths[-1]).next:
            break
    return paths


def edge_values(experiment, rounds=None):
    """The values a sweep's search added, in order, through `rounds` rounds (default: until its last plan)."""
    return [value for path in search_plans(experiment, rounds) for value in read_plan(path).next]


def tuning_plans(experiment, variant, rounds=None):
    """The plan files of a tuned variant's range extension, in order (as search_plans; checkpoint-aware)."""
    if not DESIGN.experiments[experiment].tuning.max_runs:
        return []
    paths = []
    while rounds is None or len(paths) < rounds:
        paths.append(checkpoints.plan_tuning.get(experiment=experiment, variant=variant, round=len(paths)).output.plan)
        if not read_plan(paths[-1]).next:
            break
    return paths


def tuning_candidates(experiment, variant, rounds=None):
    """The candidate names of a tuned variant: its configured factors, then those its extension added."""
    added = [f for path in tuning_plans(experiment, variant, rounds) for f in read_plan(path).next]
    return DESIGN.candidates(experiment, variant) + [DESIGN.candidate_name(experiment, variant, f) for f in added]


def probed_batch_size(experiment):
    path = checkpoints.probe_batch_size.get(experiment=experiment).output.probe
    with open(path) as f:
        return json.load(f)["batch_size"]


def variants_of(experiment):
    """Every variant the report shows for an experiment, with its repeats with other seeds and those an edge
    search or `max` added."""
    spec = DESIGN.experiments[experiment]
    variants = [name for names in DESIGN.arms(experiment).values() for name in names]
    if spec.edge:
        variants += [DESIGN.variant_name(experiment, v) for v in edge_values(experiment)]
    if spec.probe:
        named = [DESIGN.runs[experiment, v].config.train.batch_size for v in spec.variants]
        variants += [DESIGN.variant_name(experiment, b) for b in fill_batch_sizes(named, probed_batch_size(experiment))]
    return variants


def trained_dir(experiment, variant):
    """The directory holding a name's model.pt, metrics.jsonl and summary.json, after dedup (checkpoint-aware)."""
    source = DESIGN.source(DESIGN.run(experiment, variant))
    if isinstance(source, SameAs):
        return trained_dir(source.experiment, source.variant)
    if isinstance(source, WinnerOf):
        return chosen(source.sweep).run_dir
    return LAYOUT.run_dir(experiment, variant)


def run_dirs(experiment):
    """{variant: trained dir} of an experiment, in config order; names trained once share a directory
    (checkpoint-aware). The report takes these {label: run dir} mappings and never builds run paths itself."""
    return {variant: trained_dir(experiment, variant) for variant in variants_of(experiment)}


def sweep_runs(sweep):
    """{variant: trained dir} of the runs a sweep compares: an experiment's variants, or one variant's candidates
    (checkpoint-aware)."""
    experiment, _, tuned = sweep.partition("/")
    names = tuning_candidates(experiment, tuned) if tuned else variants_of(experiment)
    return {variant: trained_dir(experiment, variant) for variant in names}


def early_targets():
    """What can start before any checkpoint: every run known before anything trains that trains under its own
    name, and each `max` probe. `rule all` lists them, so a dry run shows them all and they start at once, whatever
    the checkpoints add later."""
    runs = [LAYOUT.summary(LAYOUT.run_dir(e, v)) for (e, v), run in DESIGN.runs.items()
            if isinstance(DESIGN.source(run), Trains)]
    probes = [LAYOUT.probe(name) for name, spec in DESIGN.experiments.items() if spec.probe]
    return runs + probes + [LAYOUT.noise(name) for name, spec in DESIGN.experiments.items() if spec.seeds]


# ---- train_lm ----------------------------------------------------------------------------------------------

def trainable_run(wildcards):
    run = DESIGN.run(wildcards.experiment, wildcards.variant)
    source = DESIGN.source(run)
    if not isinstance(source, Trains):
        other = (f"{source.experiment}/{source.variant}" if isinstance(source, SameAs)
                 else f"whichever run {source.sweep} selects")
        raise ConfigError(f"{run.name} is trained once as {other}; its files are there (see README, dedup)")
    return run


def tokens_of_run(wildcards):
    """The train/valid token files of the run's dataset."""
    dataset = DESIGN.run(wildcards.experiment, wildcards.variant).dataset
    return {split: LAYOUT.tokens(dataset, split) for split in SPLITS}


def selections_of_run(wildcards):
    """The selection files a run's config takes values from (checkpoint-aware)."""
    run = DESIGN.run(wildcards.experiment, wildcards.variant)
    sweeps = dict.fromkeys(ref.best_of for ref in run.references.values())
    files = [checkpoints.select_best.get(sweep=sweep).output.selection for sweep in sweeps]
    if run.combine:
        files.append(checkpoints.select_combination.get(experiment=run.combine).output.combination)
    return files


def _chosen_values(run):
    return {ref.best_of: chosen(ref.best_of).value for ref in run.references.values()}


def flat_config_of_run(wildcards):
    """The run's resolved config as dotted keys, sweep-chosen values included: a param, so a change of any value
    (a selection's too) reruns exactly the runs it touches."""
    run = trainable_run(wildcards)
    return DESIGN.resolve(run, _chosen_values(run), _combined_overrides(run)).to_flat()


def _combined_overrides(run):
    return combined(run.combine).overrides if run.combine else {}


def provenance_of_run(wildcards):
    """What summary.json records about where the run's data and sweep-chosen values came from."""
    run = trainable_run(wildcards)
    values = DESIGN.chosen_values(run, _chosen_values(run))
    return {
        "dataset": {"name": run.dataset, "source": describe_source(config["data"][run.dataset]["train"])},
        "selected": {**{key: {"value": values[key], "source": LAYOUT.selection(ref.best_of)}
                        for key, ref in run.references.items()},
                     **{key: {"value": value, "source": LAYOUT.combination(run.combine)}
                        for key, value in _combined_overrides(run).items()}},
    }


def train_runtime_minutes(wildcards, input, attempt):
    """Minutes to ask the scheduler for (cs336lm.experiments.cost.request_minutes, from the profile's machine facts), × the
    attempt; none without machine facts (a local run needs none)."""
    if MACHINE is None:
        return None
    valid_tokens = os.path.getsize(input.valid) // 2 if os.path.exists(input.valid) else None
    return request_minutes(DESIGN.run(wildcards.experiment, wildcards.variant).config, MACHINE, attempt, valid_tokens)


# ---- sweeps --------------------------------------------------------------------------------------------------

def runs_through_round(wildcards):
    """{variant: trained dir} an edge search has trained before planning round `round`: its grid, then each
    earlier round's value (checkpoint-aware)."""
    experiment, rounds = wildcards.experiment, int(wildcards.round)
    names = list(DESIGN.experiments[experiment].variants)
    names += [DESIGN.variant_name(experiment, v) for v in edge_values(experiment, rounds)]
    return {variant: trained_dir(experiment, variant) for variant in names}


def summaries_through_round(wildcards):
    return [LAYOUT.summary(d) for d in runs_through_round(wildcards).values()]


def round_number(wildcards):
    return int(wildcards.round)


def extra_runs_through_round(wildcards):
    """How many runs the search added before round `round`: what counts against its bound (checkpoint-aware)."""
    return len(edge_values(wildcards.experiment, int(wildcards.round)))


def grid_key_of_experiment(wildcards):
    return DESIGN.experiments[wildcards.experiment].grid_key


def edge_search(wildcards):
    return vars(DESIGN.experiments[wildcards.experiment].edge)


def sweep_runs_of(wildcards):
    return sweep_runs(wildcards.sweep)


def sweep_summaries(wildcards):
    return [LAYOUT.summary(d) for d in dict.fromkeys(sweep_runs(wildcards.sweep).values())]


def experiment_of_sweep(wildcards):
    return wildcards.sweep.partition("/")[0]


def sweep_key(wildcards):
    experiment, _, tuned = wildcards.sweep.partition("/")
    spec = DESIGN.experiments[experiment]
    return spec.tuning.key if tuned else spec.grid_key


def sweep_edge_factor(wildcards):
    """The edge search's target factor, so the selection reports the bracket; None for a sweep without one."""
    experiment, _, tuned = wildcards.sweep.partition("/")
    edge = DESIGN.experiments[experiment].edge
    return None if tuned or edge is None else edge.factor


def sweep_optimum_factor(wildcards):
    """The optimum's target factor, so the selection reports its bracket: the search's, or for a tuned variant
    the widest spacing of its factors; None for a sweep without either."""
    experiment, _, tuned = wildcards.sweep.partition("/")
    spec = DESIGN.experiments[experiment]
    if tuned:
        factors = sorted(set(spec.tuning.factors))
        return max((b / a for a, b in zip(factors, factors[1:])), default=None)
    return None if spec.edge is None else spec.edge.optimum_factor


def sweep_plans(wildcards):
    """The plan files of the sweep's search or of a tuned variant's extension, for the selection's record of its
    rounds (checkpoint-aware)."""
    experiment, _, tuned = wildcards.sweep.partition("/")
    if tuned:
        return tuning_plans(experiment, tuned)
    return [] if DESIGN.experiments[experiment].edge is None else search_plans(experiment)


def tuning_runs_through_round(wildcards):
    """{candidate: trained dir} a tuned variant has trained before planning round `round` (checkpoint-aware)."""
    experiment, variant = wildcards.experiment, wildcards.variant
    return {name: trained_dir(experiment, name)
            for name in tuning_candidates(experiment, variant, int(wildcards.round))}


def tuning_summaries_through_round(wildcards):
    return [f"{d}/summary.json" for d in dict.fromkeys(tuning_runs_through_round(wildcards).values())]


def tuning_factors_through_round(wildcards):
    """{candidate: factor} of the candidates trained before round `round` (checkpoint-aware)."""
    experiment, variant = wildcards.experiment, wildcards.variant
    added = [f for path in tuning_plans(experiment, variant, int(wildcards.round)) for f in read_plan(path).next]
    factors = [*DESIGN.experiments[experiment].tuning.factors, *added]
    return {DESIGN.candidate_name(experiment, variant, f): f for f in factors}


def tuning_key(wildcards):
    return DESIGN.experiments[wildcards.experiment].tuning.key


def tuning_bound(wildcards):
    return DESIGN.experiments[wildcards.experiment].tuning.max_runs


def seed_run_dirs(wildcards):
    """{variant: [trained dir of each seed]} of the variants an experiment repeats (checkpoint-aware)."""
    experiment = wildcards.experiment
    return {variant: [trained_dir(experiment, name) for name in names]
            for variant, names in DESIGN.seed_groups(experiment).items()}


def seed_summaries(wildcards):
    return [f"{d}/summary.json" for dirs in seed_run_dirs(wildcards).values() for d in dirs]


def arm_run_dirs(wildcards):
    """{variant: [trained dir of each seed]} of every variant of a candidates experiment (checkpoint-aware)."""
    experiment = wildcards.experiment
    return {variant: [trained_dir(experiment, name) for name in names]
            for variant, names in DESIGN.arms(experiment).items()}


def arm_summaries(wildcards):
    return [f"{d}/summary.json" for dirs in arm_run_dirs(wildcards).values() for d in dict.fromkeys(dirs)]


def modifications_of(wildcards):
    return DESIGN.modifications(wildcards.experiment)


def probe_config(wildcards):
    """The experiment's runs' config at batch 1 (the probe sets the batch size), as dotted keys."""
    experiment = wildcards.experiment
    return DESIGN.run(experiment, DESIGN.variant_name(experiment, 1)).config.to_flat()


def probe_settings(wildcards):
    return vars(DESIGN.experiments[wildcards.experiment].probe)


# ---- data ----------------------------------------------------------------------------------------------------

def corpus_text(dataset, split):
    """Where a corpus split's text comes from: the download or the synthesizer."""
    return LAYOUT.corpus_text(dataset, split, synthetic="synthetic" in config["data"][dataset][split])


def corpus_text_of(wildcards):
    return corpus_text(wildcards.dataset, wildcards.split)


def train_text_of_dataset(wildcards):
    return corpus_text(wildcards.dataset, "train")


def special_tokens(dataset):
    return dataset_special_tokens(config["data"][dataset])


def special_tokens_of_run(wildcards):
    return special_tokens(DESIGN.run(wildcards.experiment, wildcards.variant).dataset)


def vocab_of_run(wildcards):
    """The vocab.json of the run's tokenizer: train_lm takes the model's vocabulary size from it."""
    return tokenizer_of_run(wildcards)["vocab"]


def tokenizer_of_run(wildcards):
    dataset = DESIGN.run(wildcards.experiment, wildcards.variant).dataset
    return {"vocab": LAYOUT.vocab(dataset), "merges": LAYOUT.merges(dataset)}


def model_of_run(wildcards):
    """The trained model of a name (checkpoint-aware: a sweep's winner is known once it is selected)."""
    return LAYOUT.model(trained_dir(wildcards.experiment, wildcards.variant))


def data_threads():
    # The most workers BPE training and tokenization use; Snakemake lowers it to --cores, profiles set their own.
    return 16


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
    return [LAYOUT.pretoken_counts(wildcards.dataset, shard) for shard in range(num_shards(wildcards.dataset))]


def token_shards_of(wildcards):
    """One token file per shard of the split, in order."""
    return [LAYOUT.token_shard(wildcards.dataset, wildcards.split, shard)
            for shard in range(num_shards(wildcards.dataset))]


def tokenizer_stats_inputs(wildcards):
    """Each dataset's tokenizer files and validation text, named `<kind>_<dataset>`."""
    inputs = {}
    for dataset in config["data"]:
        inputs[f"vocab_{dataset}"] = LAYOUT.vocab(dataset)
        inputs[f"merges_{dataset}"] = LAYOUT.merges(dataset)
        inputs[f"text_{dataset}"] = corpus_text(dataset, "valid")
    return inputs


def slurm_requests():
    """The resources the Slurm executor submits per job of each step it runs, on the first attempt."""
    asked = {"_cores", "cpus_per_task", "mem_mb", "gpu", "gpu_model", "slurm_partition", "constraint"}
    requests = []
    for step in workflow.rules:
        if workflow.is_local(step):
            continue
        # Only the keys above are evaluated: a rule's other resources (train_lm's runtime) need its wildcards. A
        # request that itself depends on wildcards is known only job by job: not checked here.
        try:
            res = step.expand_resources({}, [], 1, skip_evaluation=set(step.resources.keys()) - asked)
        except Exception:
            continue
        requests.append({"rule": step.name, "partition": res.get("slurm_partition") or "",
                         "cpus": int(res.get("cpus_per_task") or res["_cores"]), "mem_mb": int(res.get("mem_mb", 0)),
                         "gpus": int(res.get("gpu", 0)), "gpu_model": res.get("gpu_model") or "",
                         "constraint": res.get("constraint") or ""})
    return requests
