"""solve_problem: run the code of one written problem of the handout and save its table (cs336lm.problems.answers)."""

import logging

from cs336lm.problems.answers import solve_problem

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
solve_problem(snakemake.wildcards.problem, dict(snakemake.input), snakemake.output.table)
