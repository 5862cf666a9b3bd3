"""train_bpe: sum the shards' pre-token counts, train a byte-level BPE tokenizer, save it in GPT-2 format
(vocab.json, merges.txt) and its training stats (train_stats.json)."""

import logging
from pathlib import Path

from cs336lm.tokenization.bpe_jobs import train_from_counts

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
train_from_counts(list(snakemake.input.counts), snakemake.params.vocab_size, list(snakemake.params.special_tokens),
                  Path(snakemake.output.vocab).parent, snakemake.output.stats)
