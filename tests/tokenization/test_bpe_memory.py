"""Memory of BPE training stays bounded: counting streams the corpus chunk by chunk, so peak RSS (of the training
process and of its largest pool worker, ru_maxrss in a real subprocess) does not grow with the corpus beyond the
table of unique pre-tokens, which a synthetic corpus saturates early. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cs336lm.corpora.synthetic import write_stories

REPO = Path(__file__).resolve().parents[2]

_TRAIN = """
import json, resource, sys
from cs336lm.tokenization import chunks, train_bpe
chunks.CHUNK_BYTES = 1 << 18  # the same chunks for both sizes: only the number of chunks grows
train_bpe(sys.argv[1], 600, ["<|endoftext|>"], num_workers=2)
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"process_kb": me.ru_maxrss, "worker_kb": kids.ru_maxrss}))
"""


def _peak_kb(path: Path) -> dict[str, int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", _TRAIN, str(path)], env=env, capture_output=True, text=True,
                            timeout=600, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB and fork pools: Linux")
def test_peak_rss_does_not_grow_with_corpus_size(tmp_path):
    small, large = tmp_path / "small.txt", tmp_path / "large.txt"
    write_stories(small, 3_000_000, seed=0)
    write_stories(large, 24_000_000, seed=0)  # 8x the text, same vocabulary of pre-tokens
    peak_small, peak_large = _peak_kb(small), _peak_kb(large)
    growth_mb = {k: (peak_large[k] - peak_small[k]) / 1024 for k in peak_small}
    # 21 MB more text; a pipeline holding text or per-chunk results would grow by about that much or more.
    assert growth_mb["process_kb"] < 8 and growth_mb["worker_kb"] < 8, (peak_small, peak_large)
