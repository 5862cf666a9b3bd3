"""plot_leaderboard: the leaderboard figure from the runs' metrics and summaries (cs336lm.report.plot_leaderboard)."""

import logging

from cs336lm.report import plot_leaderboard

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
plot_leaderboard(dict(snakemake.params.runs), snakemake.output.figure)
