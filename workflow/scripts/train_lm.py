"""train_lm: train one run (or resume it from its progress directory) from its resolved flat config."""

import logging

import torch

from cs336lm.config import RunConfig
from cs336lm.train import train

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
torch.set_num_threads(snakemake.threads)
train(RunConfig.from_flat(snakemake.params.config), snakemake.input.train, snakemake.input.valid,
      model_path=snakemake.output.model, metrics_path=snakemake.output.metrics,
      summary_path=snakemake.output.summary, progress_dir=snakemake.params.progress_dir)
