"""count_pretokens: count the pre-tokens of one byte-range shard of a corpus into a counts file."""

import logging

from cs336lm.tokenization.bpe_jobs import count_shard


def main(snakemake):
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    count_shard(snakemake.input.text, int(snakemake.wildcards.shard), snakemake.params.num_shards,
                list(snakemake.params.special_tokens), snakemake.output.counts, num_workers=snakemake.threads)


if __name__ == "__main__":  # spawned worker processes re-import this file, and must not run it again
    main(snakemake)
