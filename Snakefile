"""CS336 assignment 1 as one workflow: raw text -> BPE tokenizers -> token arrays -> training runs -> figures,
tables and the writeup (results/report.md). See config.yaml for the course experiments and profiles/demo for
the embedded CPU demo (`snakemake --profile profiles/demo`)."""

import os
import sys

from snakemake.utils import min_version

min_version("9.0")

# Rule scripts import cs336lm from this checkout, installed or not (jobs inherit the environment).
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")]))


# A --configfile (the demo profile, tests, your own experiments) replaces config.yaml rather than deep-merging
# into it, which would add the course experiments to yours; --config key=value still edits either.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/tokenizer.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report_inputs.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/samples.smk"


onstart:
    # On Slurm, check the site settings (sbatch, account, partitions, GPU type) before anything is submitted:
    # the plugin's own errors for these are obscure. Dry runs and jobs inside Slurm never get here.
    if workflow.executor_plugin is not None and workflow.executor_plugin.name == "slurm":
        shell(f"{sys.executable} {workflow.basedir}/profiles/slurm/check_site.py")


wildcard_constraints:
    dataset="[a-z][a-z0-9_]*",
    split="train|valid",
    experiment="[a-z][a-z0-9_]*",
    variant="[A-Za-z0-9_.~+-]+",


rule all:
    input:
        final_outputs(),
    default_target: True
