"""plan_tuning: the next factor of a tuned variant whose best candidate sits at an end of its range
(cs336lm.experiments.selection.plan_tuning)."""

import logging

from cs336lm.experiments.selection import plan_tuning, read_outcomes, write_plan

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
params = snakemake.params
factors = dict(params.factors)
plan = plan_tuning(params.sweep, params.round, read_outcomes(dict(params.runs), params.key), factors,
                   params.max_runs, extra_runs=params.round)
logging.info("round %d: %s", plan.round, plan.reason)
write_plan(snakemake.output.plan, plan)
