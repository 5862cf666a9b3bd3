"""download_corpus: one corpus split from its URL (resumable, sha256-checked, .gz decompressed) or from a file
already on this machine (symlinked, or decompressed once if .gz)."""

import logging

from cs336lm.corpora.download import download

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
download(snakemake.params.url, snakemake.output.text, sha256=snakemake.params.sha256)
