"""tokenize_shard: encode one byte-range shard of a corpus split into a uint16 .npy token array."""

import logging

from cs336lm.tokenization import Tokenizer
from cs336lm.tokenization.token_files import tokenize_shard


def main(snakemake):
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    tokenizer = Tokenizer.from_files(snakemake.input.vocab, snakemake.input.merges,
                                     special_tokens=list(snakemake.params.special_tokens))
    tokenize_shard(snakemake.input.text, tokenizer, int(snakemake.wildcards.shard), snakemake.params.num_shards,
                   snakemake.output.tokens, num_workers=snakemake.threads)


if __name__ == "__main__":  # spawned worker processes re-import this file, and must not run it again
    main(snakemake)
