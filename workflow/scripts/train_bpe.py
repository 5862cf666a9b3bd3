"""train_bpe: train a byte-level BPE tokenizer on a corpus and save it in GPT-2 format (vocab.json, merges.txt)."""

import logging
from pathlib import Path

from cs336lm.tokenization import Tokenizer, train_bpe


def main(snakemake):
    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    special_tokens = list(snakemake.params.special_tokens)
    vocab, merges = train_bpe(snakemake.input.text, snakemake.params.vocab_size, special_tokens,
                              num_workers=snakemake.threads)
    Tokenizer(vocab, merges, special_tokens).save(Path(snakemake.output.vocab).parent)  # vocab.json + merges.txt


if __name__ == "__main__":  # spawned worker processes re-import this file, and must not run it again
    main(snakemake)
