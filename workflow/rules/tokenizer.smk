"""BPE tokenizers (handout §2): count pre-tokens shard by shard, train one tokenizer per dataset from the summed
counts, encode both splits shard by shard and join the shards, measure the tokenizers (§2.7).

A dataset's `shards` (config `data.<dataset>.shards`) cuts each split into that many byte ranges at document
boundaries; each is one CPU job. Sharded or not, the tokenizer and token files are byte-identical."""


wildcard_constraints:
    shard="[0-9]+",


rule count_pretokens:
    input:
        text=train_text_of_dataset,
    output:
        counts=temp(f"{ROOT}/tokenizers/{{dataset}}/pretokens/{{shard}}.json"),
    log:
        f"{ROOT}/logs/count_pretokens/{{dataset}}_{{shard}}.log",
    benchmark:
        f"{ROOT}/benchmarks/count_pretokens/{{dataset}}_{{shard}}.tsv"
    params:
        num_shards=num_shards_of_dataset,
        special_tokens=special_tokens_of_dataset,
    threads: data_threads()
    script:
        "../scripts/count_pretokens.py"


rule train_bpe:
    input:
        counts=pretoken_counts_of_dataset,
    output:
        vocab=f"{ROOT}/tokenizers/{{dataset}}/vocab.json",
        merges=f"{ROOT}/tokenizers/{{dataset}}/merges.txt",
        stats=f"{ROOT}/tokenizers/{{dataset}}/train_stats.json",
    log:
        f"{ROOT}/logs/train_bpe/{{dataset}}.log",
    benchmark:
        f"{ROOT}/benchmarks/train_bpe/{{dataset}}.tsv"
    params:
        vocab_size=tokenizer_vocab_size,
        special_tokens=special_tokens_of_dataset,
    script:
        "../scripts/train_bpe.py"


rule tokenize_shard:
    input:
        text=corpus_text_of,
        vocab=f"{ROOT}/tokenizers/{{dataset}}/vocab.json",
        merges=f"{ROOT}/tokenizers/{{dataset}}/merges.txt",
    output:
        tokens=temp(f"{ROOT}/tokens/{{dataset}}/{{split}}.shards/{{shard}}.npy"),
    log:
        f"{ROOT}/logs/tokenize_shard/{{dataset}}_{{split}}_{{shard}}.log",
    benchmark:
        f"{ROOT}/benchmarks/tokenize_shard/{{dataset}}_{{split}}_{{shard}}.tsv"
    params:
        num_shards=num_shards_of_dataset,
        special_tokens=special_tokens_of_dataset,
    threads: data_threads()
    script:
        "../scripts/tokenize_shard.py"


rule tokenize_corpus:
    input:
        shards=token_shards_of,
    output:
        tokens=f"{ROOT}/tokens/{{dataset}}/{{split}}.npy",
    log:
        f"{ROOT}/logs/tokenize_corpus/{{dataset}}_{{split}}.log",
    benchmark:
        f"{ROOT}/benchmarks/tokenize_corpus/{{dataset}}_{{split}}.tsv"
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
