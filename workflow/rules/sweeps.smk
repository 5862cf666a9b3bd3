"""Sweeps that decide (handout §7.2): a search that adds learning rates round by round until the optimum and the
edge of stability are bracketed, the choice of each sweep's best value for the runs that take it, the noise floor of
runs repeated with other seeds, the modifications that helped beyond it for the runs that combine them (§7.5), and
the largest batch that fits on the device."""


localrules:
    plan_sweep,
    select_best,
    plan_tuning,
    noise_floor,
    select_combination,  # each reads a few summaries: no need to queue for a cluster node


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
        extra_runs=extra_runs_through_round,
        key=grid_key_of_experiment,
        search=edge_search,
    script:
        "../scripts/plan_sweep.py"


checkpoint select_best:
    input:
        summaries=sweep_summaries,
        plans=sweep_plans,
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
        optimum_factor=sweep_optimum_factor,
    script:
        "../scripts/select_best.py"


checkpoint plan_tuning:
    input:
        summaries=tuning_summaries_through_round,
    output:
        plan=LAYOUT.sweep_plan("{experiment}/{variant}", "{round}"),
    log:
        LAYOUT.log("plan_tuning", "{experiment}/{variant}/round{round}"),
    benchmark:
        LAYOUT.benchmark("plan_tuning", "{experiment}/{variant}/round{round}")
    params:
        sweep="{experiment}/{variant}",
        round=round_number,
        runs=tuning_runs_through_round,
        factors=tuning_factors_through_round,
        key=tuning_key,
        max_runs=tuning_bound,
    script:
        "../scripts/plan_tuning.py"


rule noise_floor:
    input:
        summaries=seed_summaries,
    output:
        noise=LAYOUT.noise("{experiment}"),
    log:
        LAYOUT.log("noise_floor", "{experiment}"),
    benchmark:
        LAYOUT.benchmark("noise_floor", "{experiment}")
    params:
        experiment="{experiment}",
        groups=seed_run_dirs,
    script:
        "../scripts/noise_floor.py"


checkpoint select_combination:
    input:
        noise=LAYOUT.noise("{experiment}"),
        summaries=arm_summaries,
    output:
        combination=LAYOUT.combination("{experiment}"),
    log:
        LAYOUT.log("select_combination", "{experiment}"),
    benchmark:
        LAYOUT.benchmark("select_combination", "{experiment}")
    params:
        runs=arm_run_dirs,
        modifications=modifications_of,
    script:
        "../scripts/select_combination.py"


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
