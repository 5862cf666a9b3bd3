"""Sweeps that decide (handout §7.2): an edge-of-stability search that adds learning rates round by round, the
choice of each sweep's best value for the runs that take it, and the largest batch that fits on the device."""


localrules:
    plan_sweep,
    select_best,  # both read a few summaries: no need to queue for a cluster node


checkpoint plan_sweep:
    input:
        summaries=summaries_through_round,
    output:
        plan=LAYOUT.sweep_plan("{experiment}", "{round}"),
    log:
        LAYOUT.log("plan_sweep", "{experiment}/round{round}"),
    benchmark:
        LAYOUT.benchmark("plan_sweep", "{experiment}/round{round}")
    params:
        experiment="{experiment}",
        round=round_number,
        runs=runs_through_round,
        key=grid_key_of_experiment,
        search=edge_search,
    script:
        "../scripts/plan_sweep.py"


checkpoint select_best:
    input:
        summaries=sweep_summaries,
    output:
        selection=LAYOUT.selection("{sweep}"),
    log:
        LAYOUT.log("select_best", "{sweep}"),
    benchmark:
        LAYOUT.benchmark("select_best", "{sweep}")
    params:
        sweep="{sweep}",
        experiment=experiment_of_sweep,
        runs=sweep_runs_of,
        key=sweep_key,
        edge_factor=sweep_edge_factor,
    script:
        "../scripts/select_best.py"


checkpoint probe_batch_size:
    output:
        probe=LAYOUT.probe("{experiment}"),
    log:
        LAYOUT.log("probe_batch_size", "{experiment}"),
    benchmark:
        LAYOUT.benchmark("probe_batch_size", "{experiment}")
    params:
        config=probe_config,
        settings=probe_settings,
    threads: 1
    resources:
        gpu=1,
    script:
        "../scripts/probe_batch_size.py"
