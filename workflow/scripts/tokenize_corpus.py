"""tokenize_corpus: join one split's token shards, in order, into its uint16 .npy token array (streamed)."""

import logging

from cs336lm.tokenization.token_files import concatenate_token_files

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
concatenate_token_files(list(snakemake.input.shards), snakemake.output.tokens)
