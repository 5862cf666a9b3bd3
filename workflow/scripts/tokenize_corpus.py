"""tokenize_corpus: encode one corpus split into a uint16 .npy token array."""

import logging

from cs336lm.tokenization import Tokenizer, tokenize_file


def main(snakemake):
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    tokenizer = Tokenizer.from_files(snakemake.input.vocab, snakemake.input.merges,
                                     special_tokens=list(snakemake.params.special_tokens))
    tokenize_file(snakemake.input.text, tokenizer, snakemake.output.tokens, num_workers=snakemake.threads)


if __name__ == "__main__":  # spawned worker processes re-import this file, and must not run it again
    main(snakemake)
