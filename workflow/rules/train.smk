"""Training runs (handout §4–§5, §7) and text samples from the trained models (§6)."""


rule train_lm:
    input:
        unpack(tokens_of_run),
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
        code_version=CODE_VERSION,
        progress_dir=f"{ROOT}/runs/{{experiment}}/{{variant}}/progress",
    threads: config["threads"]["train_lm"]
    resources:
        gpu=1,
        runtime=train_runtime_minutes,
    script:
        "../scripts/train_lm.py"


rule generate_samples:
    input:
        unpack(tokenizer_of_run),
        model=f"{ROOT}/runs/{{experiment}}/{{variant}}/model.pt",
    output:
        samples=report(f"{ROOT}/samples/{{experiment}}/{{variant}}.md", caption="../report/samples.rst",
                       category="Generated text"),
    log:
        f"{ROOT}/logs/generate_samples/{{experiment}}/{{variant}}.log",
    benchmark:
        f"{ROOT}/benchmarks/generate_samples/{{experiment}}/{{variant}}.tsv"
    params:
        special_tokens=special_tokens_of_run,
        generate=config["generate"],
    threads: 1
    resources:
        gpu=1,
    script:
        "../scripts/generate_samples.py"
