"""sample_grid: samples over temperature × top-p from one model, scored by quality proxies (handout §7.2)."""

import logging

import torch

from cs336lm.atomic import atomic_path
from cs336lm.problems.generation_quality import sample_grid
from cs336lm.tokenization import Tokenizer

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
torch.set_num_threads(snakemake.threads)
special_tokens = list(snakemake.params.special_tokens)
tokenizer = Tokenizer.from_files(snakemake.input.vocab, snakemake.input.merges, special_tokens=special_tokens)
settings, grid = snakemake.params.generate, snakemake.params.generate["grid"]
table = sample_grid(snakemake.input.model, tokenizer, list(settings["prompts"]), temperatures=grid["temperature"],
                    top_ps=grid["top_p"], samples_per_prompt=grid.get("samples_per_prompt", 1),
                    max_new_tokens=settings["max_new_tokens"], seed=settings["seed"], eos_token=special_tokens[0])
with atomic_path(snakemake.output.grid) as tmp:
    table.to_csv(tmp, index=False)
