"""select_combination: each candidate modification's effect against the baseline, judged with the experiment's noise
floor, and the combination of those that helped (cs336lm.experiments.combination.choose_combination)."""

import logging

from cs336lm.experiments.combination import choose_combination, write_combination
from cs336lm.experiments.design import BASELINE
from cs336lm.experiments.noise import read_noise, seed_losses

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
params = snakemake.params
losses = seed_losses(dict(params.runs))
baseline = losses.pop(BASELINE)
combination = choose_combination(read_noise(snakemake.input.noise), baseline, losses, dict(params.modifications))
logging.info("%s", combination.why)
write_combination(snakemake.output.combination, combination)
