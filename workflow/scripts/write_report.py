"""write_report: the markdown writeup answering handout §7 from the runs, figures, tables and samples."""

import logging

from cs336lm.writeup import write_report

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
write_report(snakemake.output.report, runs=dict(snakemake.params.runs), layout=dict(snakemake.params.layout),
             figures=list(snakemake.input.figures), samples=list(snakemake.input.samples),
             runs_table=snakemake.input.runs_table, tokenizer_stats=snakemake.input.tokenizer_stats,
             data_sources=dict(snakemake.params.data_sources),
             datasets=dict(snakemake.params.datasets), tokenizer_sizes=dict(snakemake.params.tokenizer_sizes))
