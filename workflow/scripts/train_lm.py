"""train_lm: train one run (or resume it from its progress directory) from its resolved flat config with the
vocabulary of its tokenizer, recording where its data and sweep-chosen values came from, and the wall time asked
of the scheduler."""

import json
import logging
from pathlib import Path

import torch

from cs336lm.atomic import atomic_write_text
from cs336lm.config import RunConfig
from cs336lm.training.progress import Progress
from cs336lm.training.train import train, with_tokenizer_vocabulary

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
      provenance=snakemake.params.provenance)
