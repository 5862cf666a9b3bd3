"""Corpora: downloaded (streamed, resumable, checked), linked from a copy on the site, or synthesized (the demo)."""


rule download_corpus:
    output:
        text=f"{ROOT}/downloads/{{dataset}}/{{split}}.txt",
    log:
        f"{ROOT}/logs/download_corpus/{{dataset}}_{{split}}.log",
    benchmark:
        f"{ROOT}/benchmarks/download_corpus/{{dataset}}_{{split}}.tsv"
    params:
        url=source_url,
        sha256=source_sha256,
    script:
        "../scripts/download_corpus.py"


rule synthesize_corpus:
    output:
        text=f"{ROOT}/synthetic/{{dataset}}/{{split}}.txt",
    log:
        f"{ROOT}/logs/synthesize_corpus/{{dataset}}_{{split}}.log",
    benchmark:
        f"{ROOT}/benchmarks/synthesize_corpus/{{dataset}}_{{split}}.tsv"
    params:
        synthetic=synthetic_spec,
    script:
        "../scripts/synthesize_corpus.py"
