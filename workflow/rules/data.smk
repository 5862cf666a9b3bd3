"""Corpora: downloaded (streamed, resumable, checked), linked from a copy on the site, or synthesized (the demo)."""


rule download_corpus:
    output:
        text=LAYOUT.corpus_text("{dataset}", "{split}"),
    log:
        LAYOUT.log("download_corpus", "{dataset}_{split}"),
    benchmark:
        LAYOUT.benchmark("download_corpus", "{dataset}_{split}")
    params:
        url=source_url,
        sha256=source_sha256,
    script:
        "../scripts/download_corpus.py"


rule synthesize_corpus:
    output:
        text=LAYOUT.corpus_text("{dataset}", "{split}", synthetic=True),
    log:
        LAYOUT.log("synthesize_corpus", "{dataset}_{split}"),
    benchmark:
        LAYOUT.benchmark("synthesize_corpus", "{dataset}_{split}")
    params:
        synthetic=synthetic_spec,
    script:
        "../scripts/synthesize_corpus.py"
