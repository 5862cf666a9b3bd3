"""write_report: the writeup answering every deliverable of the handout from the results tree (report.md)."""

import logging

from cs336lm.reporting.inputs import ReportInputs
from cs336lm.reporting.writeup import write_report

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
write_report(snakemake.output.report, ReportInputs.from_dict(snakemake.params.inputs))
