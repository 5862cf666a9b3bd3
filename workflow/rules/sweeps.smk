"""Sweeps that decide (handout §7.2): a search that adds learning rates round by round until the optimum and the
edge of stability are bracketed, the
choice of each sweep's best value for the runs that take it, and the largest batch that fits on the device."""


localrules:
    plan_sweep,
    select_best,
    plan_tuning,
    noise_floor,  # each reads a few summaries: no need to queue for a cluster node


checkpoint plan_sweep:
    input:
        summaries=summaries_through_round,
    output:
        plan=f"{ROOT}/sweeps/{{experiment}}/round{{round}}.json",
    log:
        f"{ROOT}/logs/plan_sweep/{{experiment}}/round{{round}}.log",
    benchmark:
        f"{ROOT}/benchmarks/plan_sweep/{{experiment}}/round{{round}}.tsv"
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
        selection=f"{ROOT}/selections/{{sweep}}.json",
    log:
        f"{ROOT}/logs/select_best/{{sweep}}.log",
    benchmark:
        f"{ROOT}/benchmarks/select_best/{{sweep}}.tsv"
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
        plan=f"{ROOT}/sweeps/{{experiment}}/{{variant}}/round{{round}}.json",
    log:
        f"{ROOT}/logs/plan_tuning/{{experiment}}/{{variant}}/round{{round}}.log",
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
        noise=f"{ROOT}/selections/{{experiment}}.noise.json",
    log:
        f"{ROOT}/logs/noise_floor/{{experiment}}.log",
    params:
        experiment="{experiment}",
        groups=seed_run_dirs,
    script:
        "../scripts/noise_floor.py"


checkpoint probe_batch_size:
    output:
        probe=f"{ROOT}/probes/{{experiment}}.json",
    log:
        f"{ROOT}/logs/probe_batch_size/{{experiment}}.log",
    benchmark:
        f"{ROOT}/benchmarks/probe_batch_size/{{experiment}}.tsv"
    params:
        config=probe_config,
        settings=probe_settings,
    threads: 1
    resources:
        gpu=1,
    script:
        "../scripts/probe_batch_size.py"
