"""When a run counts as diverged: the one rule the trainer applies, the sweeps select by and
the report states (`statement`).

AdamW with gradient clipping rarely produces NaN at large learning rates: the update size is about lr whatever
the gradient, so a too-large rate more often leaves the loss on a high plateau than sends it to infinity (a
published course run saw lr 3e-2 and 1e-1 plateau without NaN). The rule therefore has two parts: a loss that is
not finite or rises above `train.divergence_factor` × its first logged value stops the run at once; and a run
that ends no lower than the unigram entropy of its training tokens, the loss of predicting token frequencies
while ignoring the context, has learned nothing a language model is for, however finite its loss.
"""

from __future__ import annotations

import math

import numpy as np

SAMPLE_TOKENS = 1 << 24  # the unigram entropy is estimated from at most this many tokens, in evenly spaced chunks
SAMPLE_CHUNKS = 64


def statement(factor: float) -> str:
    """The rule in one sentence, for the report."""
    return (f"A run is diverged when its training loss becomes non-finite or exceeds {factor:g} × its first logged "
            "value (the run stops there), or when it ends no lower than the unigram entropy of its training tokens "
            "(the loss of predicting token frequencies without context).")


class DivergenceRule:
    """`during` checks each metrics line's training loss; `at_end` checks the run's last one."""

    def __init__(self, factor: float, no_learning_loss: float):
        self.factor, self.no_learning_loss = factor, no_learning_loss
        self.statement = statement(factor)

    def during(self, loss: float, first_loss: float, step: int) -> str | None:
        """Why the run must stop as diverged at this step, or None."""
        if not math.isfinite(loss):
            return f"the training loss is {loss} at step {step}"
        if loss > self.factor * first_loss:
            return (f"the training loss {loss:.4g} at step {step} is above {self.factor:g} × its first value "
                    f"{first_loss:.4g}")
        return None

    def at_end(self, last_loss: float | None) -> str | None:
        """Why the finished run counts as diverged, or None."""
        if last_loss is not None and last_loss >= self.no_learning_loss:
            return (f"the training loss ended at {last_loss:.4g}, no lower than the unigram entropy of the training "
                    f"tokens, {self.no_learning_loss:.4g}")
        return None


def unigram_entropy(tokens: np.ndarray, vocab_size: int) -> float:
    """Entropy in nats of the token frequencies: from the whole file up to SAMPLE_TOKENS, else from SAMPLE_CHUNKS
    evenly spaced chunks of it (an OWT-sized file is not read whole just for this)."""
    n = len(tokens)
    if n <= SAMPLE_TOKENS:
        counts = np.bincount(np.asarray(tokens), minlength=vocab_size)
    else:
        size = SAMPLE_TOKENS // SAMPLE_CHUNKS
        counts = sum(np.bincount(np.asarray(tokens[s : s + size]), minlength=vocab_size)
                     for s in np.linspace(0, n - size, SAMPLE_CHUNKS, dtype=np.int64))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())
