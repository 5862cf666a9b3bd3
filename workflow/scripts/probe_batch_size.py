"""probe_batch_size: the largest training batch that fits on the device (cs336lm.training.batch_probe), for `max`."""

import json
import logging

import torch

from cs336lm.atomic import atomic_write_text
from cs336lm.training.batch_probe import largest_batch_size
from cs336lm.config import RunConfig

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
torch.set_num_threads(snakemake.threads)
settings = snakemake.params.settings
cap_mb = settings["memory_cap_mb"]
result = largest_batch_size(RunConfig.from_flat(snakemake.params.config),
                            memory_cap_bytes=None if cap_mb is None else cap_mb * 2**20,
                            max_batch_size=settings["limit"])
for trial in result.trials:
    logging.info("batch %d: %s", trial.batch_size, "fits" if trial.fits else f"does not fit ({trial.error})")
logging.info("largest batch that fits on %s: %d", result.device, result.batch_size)
atomic_write_text(snakemake.output.probe, json.dumps(result.to_dict(), indent=2) + "\n")
