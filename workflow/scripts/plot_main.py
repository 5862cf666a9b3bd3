"""plot_main: the main figure from the runs' metrics and summaries (cs336lm.report.plot_main)."""

import logging

from cs336lm.report import plot_main

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
plot_main(dict(snakemake.params.runs), snakemake.output.figure)
