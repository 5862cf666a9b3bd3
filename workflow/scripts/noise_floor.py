"""noise_floor: an experiment's noise floor from the variants it repeats with other seeds (cs336lm.experiments.noise)."""

import logging

from cs336lm.experiments.noise import measure_noise, seed_losses, write_noise

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
params = snakemake.params
noise = measure_noise(params.experiment, seed_losses(dict(params.groups)))
logging.info("%s: sigma %s over %s", params.experiment, noise.sigma, noise.losses)
write_noise(snakemake.output.noise, noise)
