"""How a run ended: stable, unstable or diverged. The one rule the trainer applies, the sweeps select by, the
figures mark and the report states (`statement`).

AdamW with gradient clipping rarely produces NaN at large learning rates: the update size is about lr whatever
the gradient, so a too-large rate more often leaves the loss on a high plateau than sends it to infinity (a
published course run saw lr 3e-2 and 1e-1 plateau without NaN). The rule therefore has two parts: a loss that is
not finite or rises above `train.divergence_factor` × its first logged value stops the run at once; and a run
that ends no lower than the unigram entropy of its training tokens, the loss of predicting token frequencies
while ignoring the context, has learned nothing a language model is for, however finite its loss.

A run that is not diverged can still be unstable: its training loss rose above its first logged value, or spiked
and (perhaps) recovered. A spike is a logged training loss that gives back more than SPIKE_GIVE_BACK of the
decrease achieved so far (loss - lowest earlier loss > SPIKE_GIVE_BACK x (first loss - lowest earlier loss)); a
rise above the first value gives back all of it, so it is the same test. Only a run that is neither is stable.
A logged loss is one batch's, so both tests allow for batch noise: a rise counts only when it exceeds
NOISE_FRACTION of the first value, and a give-back only once the decrease itself exceeds that much (at batch 4 the
loss of the first warm-up steps wobbles by a few hundredths of a nat, and half of a decrease that small is noise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

SAMPLE_TOKENS = 1 << 24  # the unigram entropy is estimated from at most this many tokens, in evenly spaced chunks
SAMPLE_CHUNKS = 64
SPIKE_GIVE_BACK = 0.5
NOISE_FRACTION = 0.02  # of the first logged loss: changes smaller than this are one batch's noise

STABLE, UNSTABLE, DIVERGED = "ok", "unstable", "diverged"  # RunSummary.status of a finished run
OUTCOMES = {STABLE: "stable", UNSTABLE: "unstable", DIVERGED: "diverged"}  # the status as the report names it


def statement(factor: float) -> str:
    """The rule in one sentence, for the report."""
    return (f"A run is diverged when its training loss becomes non-finite or exceeds {factor:g} × its first logged "
            "value (the run stops there), or when it ends no lower than the unigram entropy of its training tokens "
            "(the loss of predicting token frequencies without context); a run that is not diverged is unstable "
            f"when a logged training loss rose more than {NOISE_FRACTION:.0%} above the first one, or gave back more "
            f"than {SPIKE_GIVE_BACK:.0%} of a decrease (of more than {NOISE_FRACTION:.0%} of the first value) achieved "
            "before it (a spike, recovered or not); every other run is stable.")


class DivergenceRule:
    """`during` checks each metrics line's training loss; `at_end` checks the run's last one; `unstable` checks the
    whole curve of a run that did not diverge."""

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

    def unstable(self, losses: Sequence[float]) -> str | None:
        """Why a run with these logged training losses (in order, the first one first) is unstable, or None."""
        return instability(losses)


def instability(losses: Sequence[float]) -> str | None:
    """The first logged training loss that rose more than NOISE_FRACTION above the first one or gave back more than
    SPIKE_GIVE_BACK of a decrease (larger than NOISE_FRACTION of the first) before it, in words; None for a stable
    curve."""
    if not losses:
        return None
    first = lowest = losses[0]
    noise = NOISE_FRACTION * abs(first)
    for i, loss in enumerate(losses[1:], start=1):
        if loss > first + noise:
            return f"the training loss rose to {loss:.4g} (logged value {i + 1}), above its first value {first:.4g}"
        if first - lowest > noise and loss - lowest > SPIKE_GIVE_BACK * (first - lowest):
            return (f"the training loss spiked to {loss:.4g} (logged value {i + 1}) from {lowest:.4g}, giving back "
                    f"{(loss - lowest) / (first - lowest):.0%} of its decrease from {first:.4g}")
        lowest = min(lowest, loss)
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
