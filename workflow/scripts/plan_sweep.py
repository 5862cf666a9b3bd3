"""plan_sweep: the next values of a sweep's search for its optimum and its edge of stability, from the runs it has so
far (cs336lm.experiments.selection)."""

import logging

from cs336lm.experiments.selection import EdgeSearch, plan_next, read_outcomes, write_plan

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
params = snakemake.params
plan = plan_next(params.experiment, params.round, read_outcomes(dict(params.runs), params.key),
                 EdgeSearch(**params.search), extra_runs=params.extra_runs)
logging.info("round %d: %s", plan.round, plan.reason)
write_plan(snakemake.output.plan, plan)
