"""make_tables: the experiment log, one row per trained run directory (status, losses, steps, tokens, throughput),
tuning candidates from the selection files included, as CSV."""

import logging

from cs336lm.reporting.runs import read_selections, write_runs_table

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
write_runs_table(dict(snakemake.params.runs), snakemake.output.csv, read_selections(snakemake.params.selections))
