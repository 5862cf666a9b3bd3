"""Text from the trained models (handout §6, §7.2 `generate`): sample sheets for the runs the report samples, and
the temperature × top-p grid on one of them with its quality proxies."""


rule generate_samples:
    input:
        unpack(tokenizer_of_run),
        model=model_of_run,
    output:
        samples=report(f"{ROOT}/samples/{{experiment}}/{{variant}}.md", caption="../report/samples.rst",
                       category="7.2 generate"),
        scores=f"{ROOT}/samples/{{experiment}}/{{variant}}.json",
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


rule sample_grid:
    input:
        unpack(grid_model_inputs),
    output:
        grid=report(f"{ROOT}/samples/generation_grid.csv", caption="../report/generation_grid.rst",
                    category="7.2 generate"),
    log:
        f"{ROOT}/logs/sample_grid/all.log",
    benchmark:
        f"{ROOT}/benchmarks/sample_grid/all.tsv"
    params:
        special_tokens=grid_special_tokens,
        generate=config["generate"],
    threads: 1
    resources:
        gpu=1,
    script:
        "../scripts/sample_grid.py"
