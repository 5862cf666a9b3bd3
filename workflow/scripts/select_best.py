"""select_best: the winner of a sweep and why it won, from its finished runs (cs336lm.experiments.selection.choose_best)."""

import logging

from cs336lm.experiments.selection import (
    choose_best,
    locate_edge,
    locate_optimum,
    read_outcomes,
    read_plan,
    write_selection,
)

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
params = snakemake.params
outcomes = read_outcomes(dict(params.runs), params.key)
edge = None if params.edge_factor is None else locate_edge(outcomes, params.edge_factor)
optimum = None if params.optimum_factor is None else locate_optimum(outcomes, params.optimum_factor)
rounds = [read_plan(path) for path in snakemake.input.plans]
selection = choose_best(params.sweep, params.experiment, params.key, outcomes, edge, optimum, rounds)
logging.info("%s", selection.why)
write_selection(snakemake.output.selection, selection)
