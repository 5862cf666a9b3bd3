"""make_tables: the experiment log, one row per run (status, losses, steps, tokens, throughput), as CSV."""

import logging

from cs336lm.reporting.runs import write_runs_table

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
write_runs_table(dict(snakemake.params.runs), snakemake.output.csv)
