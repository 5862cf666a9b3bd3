"""Training runs (handout §4–§5, §7)."""


rule train_lm:
    input:
        unpack(tokens_of_run),
        selections=selections_of_run,
        vocab=vocab_of_run,
    output:
        model=f"{ROOT}/runs/{{experiment}}/{{variant}}/model.pt",
        metrics=f"{ROOT}/runs/{{experiment}}/{{variant}}/metrics.jsonl",
        summary=f"{ROOT}/runs/{{experiment}}/{{variant}}/summary.json",
    log:
        f"{ROOT}/logs/train_lm/{{experiment}}/{{variant}}.log",
    benchmark:
        f"{ROOT}/benchmarks/train_lm/{{experiment}}/{{variant}}.tsv"
    params:
        config=flat_config_of_run,
        provenance=provenance_of_run,
        code_version=CODE_VERSION,
        progress_dir=f"{ROOT}/runs/{{experiment}}/{{variant}}/progress",
        # Undeclared, like progress/: written as the job starts, it must not make a killed job's outputs look
        # incomplete to the next Snakemake (which would then refuse to start before naming its lock).
        request=f"{ROOT}/runs/{{experiment}}/{{variant}}/request.json",
    threads: 1
    resources:
        gpu=1,
        runtime=train_runtime_minutes,
    script:
        "../scripts/train_lm.py"
