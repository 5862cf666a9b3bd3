"""noise_floor: an experiment's noise floor from the variants it repeats with other seeds (cs336lm.experiments.noise)."""

import logging
import os

from cs336lm.experiments.noise import measure_noise, write_noise
from cs336lm.training.divergence import STABLE
from cs336lm.training.summary import read_summary

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
params = snakemake.params
losses = {}
for variant, run_dirs in dict(params.groups).items():
    summaries = [read_summary(os.path.join(d, "summary.json")) for d in run_dirs]
    losses[variant] = [s.final_val_loss if s.status == STABLE else None for s in summaries]
noise = measure_noise(params.experiment, losses)
logging.info("%s: sigma %s over %s", params.experiment, noise.sigma, noise.losses)
write_noise(snakemake.output.noise, noise)
