"""CS336 assignment 1 as one workflow: raw text -> BPE tokenizers -> token arrays -> training runs -> figures,
tables and the writeup (results/report.md). See config.yaml for the course experiments and profiles/demo for
the embedded CPU demo (`snakemake --profile profiles/demo`). Rule scripts import the installed cs336lm package
(`pip install -e .`, README)."""

import json
import sys
import tempfile

from snakemake.utils import min_version

min_version("9.0")


# The experiment design is config.yaml unless a --configfile that defines experiments replaces it (the demo
# profile, tests, your own design); deep-merging would add the course experiments to yours. A profile's own
# configfile of machine facts (profiles/slurm/machine.yaml) adds to whichever design is used.
if "experiments" not in config:

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/tokenizer.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sweeps.smk"
include: "workflow/rules/report_inputs.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/samples.smk"


onstart:
    # On Slurm, check the site settings (sbatch, account, partitions, GPU type) and that some node of each rule's
    # partition can run its jobs, before anything is submitted: the plugin's own errors for these are obscure, and
    # a job no node can run pends forever. Dry runs and jobs inside Slurm never get here.
    if workflow.executor_plugin is not None and workflow.executor_plugin.name == "slurm":
        with tempfile.NamedTemporaryFile("w", suffix=".json") as requests:
            json.dump(slurm_requests(), requests)
            requests.flush()
            shell(f"{sys.executable} {workflow.basedir}/profiles/slurm/check_site.py --requests {requests.name}")


wildcard_constraints:
    dataset="[a-z][a-z0-9_]*",
    split="train|valid",
    experiment="[a-z][a-z0-9_]*",
    variant="[A-Za-z0-9_.~+-]+",
    sweep="[a-z][a-z0-9_]*(/[A-Za-z0-9_.~+-]+)?",
    round="[0-9]+",


rule all:
    input:
        final_outputs(),
        early_targets(),
    default_target: True
