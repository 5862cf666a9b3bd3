"""train_lm: train one run (or resume it from its progress directory) from its resolved flat config with the
vocabulary of its tokenizer, recording where its data and sweep-chosen values came from, and the wall time asked
of the scheduler."""

import os
import time

# First thing: a wall-clock budget counts the job's start-up, from Slurm's start of the job where it says when
# that was (the Snakemake start-up inside the job comes before this script), else from now. On the clocks' source.
_since_start = max(time.time() - float(os.environ.get("SLURM_JOB_START_TIME") or time.time()), 0.0)
JOB_STARTED = time.perf_counter() - _since_start

import json  # noqa: E402
import logging  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from cs336lm.atomic import atomic_write_text  # noqa: E402
from cs336lm.config import RunConfig  # noqa: E402
from cs336lm.training.progress import Progress  # noqa: E402
from cs336lm.training.train import train, with_tokenizer_vocabulary  # noqa: E402

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
torch.set_num_threads(snakemake.threads)
# The time asked of the scheduler (this attempt's; None on a local run without machine facts), to set beside the
# time used, and whether this attempt resumes an earlier one (killed at its time limit, preempted, or failed).
resumes = Progress(snakemake.params.progress_dir).checkpoint.exists()
Path(snakemake.params.request).parent.mkdir(parents=True, exist_ok=True)
atomic_write_text(snakemake.params.request, json.dumps({
    "requested_minutes": getattr(snakemake.resources, "runtime", None), "resumed": resumes}) + "\n")
# The model's vocabulary is the tokenizer's (BPE may stop short of the size asked for), recorded in summary.json.
config = with_tokenizer_vocabulary(RunConfig.from_flat(snakemake.params.config), snakemake.input.vocab)
train(config, snakemake.input.train, snakemake.input.valid,
      model_path=snakemake.output.model, metrics_path=snakemake.output.metrics,
      summary_path=snakemake.output.summary, progress_dir=snakemake.params.progress_dir,
      provenance=snakemake.params.provenance, job_started=JOB_STARTED)
