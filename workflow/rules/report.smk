"""Figures, tables and the writeup answering handout §7, all read from the runs' metrics and summaries."""


localrules:
    plot_lr_sweep,
    plot_batch_size,
    plot_ablation,
    plot_main,
    plot_leaderboard,
    make_tables,
    write_report,


rule plot_lr_sweep:
    input:
        run_files([REPORT.get("lr_sweep")]),
    output:
        figure=report(f"{ROOT}/figures/lr_sweep.png", caption="../report/lr_sweep.rst", category="Learning rate"),
    log:
        f"{ROOT}/logs/plot_lr_sweep/all.log",
    benchmark:
        f"{ROOT}/benchmarks/plot_lr_sweep/all.tsv"
    params:
        runs=runs_of(REPORT.get("lr_sweep")),
    script:
        "../scripts/plot_lr_sweep.py"


rule plot_batch_size:
    input:
        run_files([REPORT.get("batch_size")]),
    output:
        figure=report(f"{ROOT}/figures/batch_size.png", caption="../report/batch_size.rst", category="Batch size"),
    log:
        f"{ROOT}/logs/plot_batch_size/all.log",
    benchmark:
        f"{ROOT}/benchmarks/plot_batch_size/all.tsv"
    params:
        runs=runs_of(REPORT.get("batch_size")),
    script:
        "../scripts/plot_batch_size.py"


rule plot_ablation:
    input:
        ablation_run_files,
    output:
        figure=report(f"{ROOT}/figures/ablations/{{variant}}.png", caption="../report/ablation.rst",
                      category="Ablations"),
    log:
        f"{ROOT}/logs/plot_ablation/{{variant}}.log",
    benchmark:
        f"{ROOT}/benchmarks/plot_ablation/{{variant}}.tsv"
    params:
        runs=ablation_runs,
    script:
        "../scripts/plot_ablation.py"


rule plot_main:
    input:
        run_files(REPORT.get("main", [])),
    output:
        figure=report(f"{ROOT}/figures/main.png", caption="../report/main.rst", category="Main runs"),
    log:
        f"{ROOT}/logs/plot_main/all.log",
    benchmark:
        f"{ROOT}/benchmarks/plot_main/all.tsv"
    params:
        runs=main_runs(),
    script:
        "../scripts/plot_main.py"


rule plot_leaderboard:
    input:
        run_files([REPORT.get("leaderboard")]),
    output:
        figure=report(f"{ROOT}/figures/leaderboard.png", caption="../report/leaderboard.rst", category="Leaderboard"),
    log:
        f"{ROOT}/logs/plot_leaderboard/all.log",
    benchmark:
        f"{ROOT}/benchmarks/plot_leaderboard/all.tsv"
    params:
        runs=runs_of(REPORT.get("leaderboard")),
    script:
        "../scripts/plot_leaderboard.py"


rule make_tables:
    input:
        run_files(config["experiments"], names=("summary.json",)),
    output:
        csv=report(f"{ROOT}/tables/runs.csv", caption="../report/runs_table.rst", category="Tables"),
        md=f"{ROOT}/tables/runs.md",
    log:
        f"{ROOT}/logs/make_tables/all.log",
    benchmark:
        f"{ROOT}/benchmarks/make_tables/all.tsv"
    params:
        runs=all_run_dirs(),
    script:
        "../scripts/make_tables.py"


rule write_report:
    input:
        unpack(report_inputs),
    output:
        report=f"{ROOT}/report.md",
    log:
        f"{ROOT}/logs/write_report/all.log",
    benchmark:
        f"{ROOT}/benchmarks/write_report/all.tsv"
    params:
        runs=all_run_dirs(),
        layout=REPORT,
        data_sources=data_sources(),
        datasets=experiment_datasets(),
        tokenizer_sizes=tokenizer_sizes(),
    script:
        "../scripts/write_report.py"
