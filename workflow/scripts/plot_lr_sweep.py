"""plot_lr_sweep: the lr_sweep figure from the runs' metrics and summaries (cs336lm.report.plot_lr_sweep)."""

import logging

from cs336lm.report import plot_lr_sweep

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
plot_lr_sweep(dict(snakemake.params.runs), snakemake.output.figure)
