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
        counts=temp(LAYOUT.pretoken_counts("{dataset}", "{shard}")),
    log:
        LAYOUT.log("count_pretokens", "{dataset}_{shard}"),
    benchmark:
        LAYOUT.benchmark("count_pretokens", "{dataset}_{shard}")
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
        vocab=LAYOUT.vocab("{dataset}"),
        merges=LAYOUT.merges("{dataset}"),
        stats=LAYOUT.bpe_stats("{dataset}"),
    log:
        LAYOUT.log("train_bpe", "{dataset}"),
    benchmark:
        LAYOUT.benchmark("train_bpe", "{dataset}")
    params:
        vocab_size=tokenizer_vocab_size,
        special_tokens=special_tokens_of_dataset,
    script:
        "../scripts/train_bpe.py"


rule tokenize_shard:
    input:
        text=corpus_text_of,
        vocab=LAYOUT.vocab("{dataset}"),
        merges=LAYOUT.merges("{dataset}"),
    output:
        tokens=temp(LAYOUT.token_shard("{dataset}", "{split}", "{shard}")),
    log:
        LAYOUT.log("tokenize_shard", "{dataset}_{split}_{shard}"),
    benchmark:
        LAYOUT.benchmark("tokenize_shard", "{dataset}_{split}_{shard}")
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
        tokens=LAYOUT.tokens("{dataset}", "{split}"),
    log:
        LAYOUT.log("tokenize_corpus", "{dataset}_{split}"),
    benchmark:
        LAYOUT.benchmark("tokenize_corpus", "{dataset}_{split}")
    script:
        "../scripts/tokenize_corpus.py"


rule tokenizer_stats:
    input:
        unpack(tokenizer_stats_inputs),
    output:
        csv=report(LAYOUT.table("tokenizer_stats"), caption="../report/tokenizer_stats.rst", category="Tokenizers"),
        md=LAYOUT.table("tokenizer_stats", "md"),
    log:
        LAYOUT.log("tokenizer_stats", "all"),
    benchmark:
        LAYOUT.benchmark("tokenizer_stats", "all")
    params:
        datasets=list(config["data"]),
        special_tokens=special_tokens(DEFAULT_DATASET),
        num_documents=config["tokenizer_stats"]["num_documents"],
        seed=config["tokenizer_stats"]["seed"],
    script:
        "../scripts/tokenizer_stats.py"
