"""plot_ablation: the ablation figure from the runs' metrics and summaries (cs336lm.report.plot_ablation)."""

import logging

from cs336lm.report import plot_ablation

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
plot_ablation(dict(snakemake.params.runs), snakemake.output.figure)
