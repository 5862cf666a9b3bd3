"""Text from the trained models (handout §6, §7.2 `generate`): sample sheets for the runs the report samples, and
the temperature × top-p grid on one of them with its quality proxies."""


rule generate_samples:
    input:
        unpack(tokenizer_of_run),
        model=model_of_run,
    output:
        samples=report(LAYOUT.samples("{experiment}", "{variant}"), caption="../report/samples.rst",
                       category="7.2 generate"),
        scores=LAYOUT.sample_scores("{experiment}", "{variant}"),
    log:
        LAYOUT.log("generate_samples", "{experiment}/{variant}"),
    benchmark:
        LAYOUT.benchmark("generate_samples", "{experiment}/{variant}")
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
        grid=report(LAYOUT.generation_grid(), caption="../report/generation_grid.rst",
                    category="7.2 generate"),
    log:
        LAYOUT.log("sample_grid", "all"),
    benchmark:
        LAYOUT.benchmark("sample_grid", "all")
    params:
        special_tokens=grid_special_tokens,
        generate=config["generate"],
    threads: 1
    resources:
        gpu=1,
    script:
        "../scripts/sample_grid.py"
