"""Training runs (handout §4–§5, §7)."""


RUN = LAYOUT.run_dir("{experiment}", "{variant}")  # a run's directory as a pattern over the wildcards

rule train_lm:
    input:
        unpack(tokens_of_run),
        selections=selections_of_run,
        vocab=vocab_of_run,
    output:
        model=LAYOUT.model(RUN),
        metrics=LAYOUT.metrics(RUN),
        summary=LAYOUT.summary(RUN),
    log:
        LAYOUT.log("train_lm", "{experiment}/{variant}"),
    benchmark:
        LAYOUT.benchmark("train_lm", "{experiment}/{variant}")
    params:
        config=flat_config_of_run,
        provenance=provenance_of_run,
        code_version=CODE_VERSION,
        progress_dir=LAYOUT.progress(RUN),
        # Undeclared, like progress/: written as the job starts, it must not make a killed job's outputs look
        # incomplete to the next Snakemake (which would then refuse to start before naming its lock).
        request=LAYOUT.request(RUN),
    threads: 1
    resources:
        gpu=1,
        runtime=train_runtime_minutes,
    script:
        "../scripts/train_lm.py"
