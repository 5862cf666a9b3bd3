"""synthesize_corpus: write a seeded synthetic corpus (the embedded demo's stand-in for TinyStories/OWT)."""

import logging

from cs336lm.corpora.synthetic import write_stories

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
spec = snakemake.params.synthetic
write_stories(snakemake.output.text, num_bytes=spec["bytes"], seed=spec.get("seed", 0),
              style=spec.get("style", "tinystories"))
