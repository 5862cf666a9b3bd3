"""BPE tokenizers (handout §2): train one per dataset, encode both splits, measure them (§2.7)."""


rule train_bpe:
    input:
        text=train_text_of_dataset,
    output:
        vocab=f"{ROOT}/tokenizers/{{dataset}}/vocab.json",
        merges=f"{ROOT}/tokenizers/{{dataset}}/merges.txt",
    log:
        f"{ROOT}/logs/train_bpe/{{dataset}}.log",
    benchmark:
        f"{ROOT}/benchmarks/train_bpe/{{dataset}}.tsv"
    params:
        vocab_size=tokenizer_vocab_size,
        special_tokens=special_tokens_of_dataset,
    threads: data_threads()
    script:
        "../scripts/train_bpe.py"


rule tokenize_corpus:
    input:
        text=corpus_text_of,
        vocab=f"{ROOT}/tokenizers/{{dataset}}/vocab.json",
        merges=f"{ROOT}/tokenizers/{{dataset}}/merges.txt",
    output:
        tokens=f"{ROOT}/tokens/{{dataset}}/{{split}}.npy",
    log:
        f"{ROOT}/logs/tokenize_corpus/{{dataset}}_{{split}}.log",
    benchmark:
        f"{ROOT}/benchmarks/tokenize_corpus/{{dataset}}_{{split}}.tsv"
    params:
        special_tokens=special_tokens_of_dataset,
    threads: data_threads()
    script:
        "../scripts/tokenize_corpus.py"


rule tokenizer_stats:
    input:
        unpack(tokenizer_stats_inputs),
    output:
        csv=report(f"{ROOT}/tables/tokenizer_stats.csv", caption="../report/tokenizer_stats.rst", category="Tokenizers"),
        md=f"{ROOT}/tables/tokenizer_stats.md",
    log:
        f"{ROOT}/logs/tokenizer_stats/all.log",
    benchmark:
        f"{ROOT}/benchmarks/tokenizer_stats/all.tsv"
    params:
        datasets=list(config["data"]),
        special_tokens=special_tokens(DEFAULT_DATASET),
        num_documents=config["tokenizer_stats"]["num_documents"],
        seed=config["tokenizer_stats"]["seed"],
    script:
        "../scripts/tokenizer_stats.py"
