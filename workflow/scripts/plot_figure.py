"""plot_figure: draw one registered figure from the files its manifest names (cs336lm.reporting.registry)."""

import logging

from cs336lm.reporting.inputs import ReportInputs
from cs336lm.reporting.registry import all_figures

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
all_figures()[snakemake.wildcards.figure].plot(ReportInputs.from_dict(snakemake.params.inputs), snakemake.output.figure)
