"""generate_samples: decode text from a trained model for each prompt (handout §7.2) into a markdown file, and the
samples with their own loss under the model into a JSON file."""

import logging

import torch

from cs336lm.problems.samples import write_samples
from cs336lm.tokenization import Tokenizer

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
torch.set_num_threads(snakemake.threads)
special_tokens = list(snakemake.params.special_tokens)
tokenizer = Tokenizer.from_files(snakemake.input.vocab, snakemake.input.merges, special_tokens=special_tokens)
settings = snakemake.params.generate
write_samples(snakemake.input.model, tokenizer, list(settings["prompts"]), snakemake.output.samples,
              max_new_tokens=settings["max_new_tokens"], temperature=settings["temperature"],
              top_p=settings["top_p"], seed=settings["seed"], eos_token=special_tokens[0],
              scores_path=snakemake.output.scores)
