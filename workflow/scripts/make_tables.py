"""make_tables: one row per run (final/best val loss, throughput, status) as CSV and markdown."""

import logging

from cs336lm.report import write_runs_table

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
write_runs_table(dict(snakemake.params.runs), snakemake.output.csv, snakemake.output.md)
