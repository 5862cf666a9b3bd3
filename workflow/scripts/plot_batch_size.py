"""plot_batch_size: the batch_size figure from the runs' metrics and summaries (cs336lm.report.plot_batch_size)."""

import logging

from cs336lm.report import plot_batch_size

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
plot_batch_size(dict(snakemake.params.runs), snakemake.output.figure)
