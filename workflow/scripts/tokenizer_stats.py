"""tokenizer_stats: compression ratio and throughput of every tokenizer on every corpus (handout §2.7)."""

import logging

from cs336lm.tokenization import Tokenizer
from cs336lm.tokenization.stats import tokenizer_stats


def main(snakemake):
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    datasets, specials = snakemake.params.datasets, list(snakemake.params.special_tokens)
    tokenizers = {d: Tokenizer.from_files(snakemake.input[f"vocab_{d}"], snakemake.input[f"merges_{d}"],
                                          special_tokens=specials) for d in datasets}
    corpora = {d: snakemake.input[f"text_{d}"] for d in datasets}
    table = tokenizer_stats(tokenizers, corpora, num_documents=snakemake.params.num_documents,
                            seed=snakemake.params.seed)
    table.to_csv(snakemake.output.csv, index=False)
    with open(snakemake.output.md, "w") as f:
        f.write(table.to_markdown(index=False) + "\n")


if __name__ == "__main__":  # spawned worker processes re-import this file, and must not run it again
    main(snakemake)
