"""The writeup from the registry of deliverables (cs336lm.reporting.registry): the written problems, one generic
plot rule for every figure, the runs table and report.md (their inputs come from report_inputs.smk)."""


report: "../report/workflow.rst"


wildcard_constraints:
    problem="|".join(PROBLEMS),
    figure="|".join(map(re.escape, figures_made())) or "(?!)",


localrules:
    solve_problem,
    plot_figure,
    make_tables,
    write_report,


rule solve_problem:
    input:
        unpack(problem_texts),
    output:
        table=report(f"{ROOT}/problems/{{problem}}.csv", caption="../report/problem.rst",
                     category="Written problems"),
    log:
        f"{ROOT}/logs/solve_problem/{{problem}}.log",
    benchmark:
        f"{ROOT}/benchmarks/solve_problem/{{problem}}.tsv"
    script:
        "../scripts/solve_problem.py"


rule plot_figure:
    input:
        figure_inputs,
    output:
        figure=report(f"{ROOT}/figures/{{figure}}.png", caption="../report/figure.rst", category=figure_category),
    log:
        f"{ROOT}/logs/plot_figure/{{figure}}.log",
    benchmark:
        f"{ROOT}/benchmarks/plot_figure/{{figure}}.tsv"
    params:
        inputs=figure_manifest,
        caption=figure_caption,
    script:
        "../scripts/plot_figure.py"


rule make_tables:
    input:
        all_run_files,
    output:
        csv=report(f"{ROOT}/tables/runs.csv", caption="../report/runs_table.rst", category="7.1 experiment_log"),
    log:
        f"{ROOT}/logs/make_tables/all.log",
    benchmark:
        f"{ROOT}/benchmarks/make_tables/all.tsv"
    params:
        runs=all_run_dirs,
        selections=f"{ROOT}/selections",
    script:
        "../scripts/make_tables.py"


rule write_report:
    input:
        report_inputs,
        report_run_files,
    output:
        report=report(f"{ROOT}/report.md", caption="../report/writeup.rst", category="Writeup"),
    log:
        f"{ROOT}/logs/write_report/all.log",
    benchmark:
        f"{ROOT}/benchmarks/write_report/all.tsv"
    params:
        inputs=report_manifest,
    script:
        "../scripts/write_report.py"
