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
        table=report(LAYOUT.problem("{problem}"), caption="../report/problem.rst",
                     category="Written problems"),
    log:
        LAYOUT.log("solve_problem", "{problem}"),
    benchmark:
        LAYOUT.benchmark("solve_problem", "{problem}")
    script:
        "../scripts/solve_problem.py"


rule plot_figure:
    input:
        figure_inputs,
    output:
        figure=report(LAYOUT.figure("{figure}"), caption="../report/figure.rst", category=figure_category),
    log:
        LAYOUT.log("plot_figure", "{figure}"),
    benchmark:
        LAYOUT.benchmark("plot_figure", "{figure}")
    params:
        inputs=figure_manifest,
        caption=figure_caption,
    script:
        "../scripts/plot_figure.py"


rule make_tables:
    input:
        all_run_files,
    output:
        csv=report(LAYOUT.table("runs"), caption="../report/runs_table.rst", category="7.1 experiment_log"),
    log:
        LAYOUT.log("make_tables", "all"),
    benchmark:
        LAYOUT.benchmark("make_tables", "all")
    params:
        runs=all_run_dirs,
        selections=LAYOUT.selections(),
    script:
        "../scripts/make_tables.py"


rule write_report:
    input:
        report_inputs,
        report_run_files,
    output:
        report=report(LAYOUT.report(), caption="../report/writeup.rst", category="Writeup"),
    log:
        LAYOUT.log("write_report", "all"),
    benchmark:
        LAYOUT.benchmark("write_report", "all")
    params:
        inputs=report_manifest,
    script:
        "../scripts/write_report.py"
