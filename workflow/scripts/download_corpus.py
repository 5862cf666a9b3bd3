"""download_corpus: stream one corpus split from its URL (resumable, sha256-checked, .gz decompressed)."""

import logging

from cs336lm.corpora.download import download

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
download(snakemake.params.url, snakemake.output.text, sha256=snakemake.params.sha256)
