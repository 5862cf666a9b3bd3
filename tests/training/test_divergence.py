"""cs336lm.training.divergence: the rule's parts (non-finite, a rise above factor × the first loss, ending no lower
than the
unigram entropy), its one-sentence statement, and the unigram entropy itself, also when estimated from a sample."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cs336lm.training import divergence
from cs336lm.training.divergence import DivergenceRule, instability, statement, unigram_entropy


def test_non_finite_or_a_rise_above_factor_times_the_first_loss_stops_the_run():
    rule = DivergenceRule(factor=2.0, no_learning_loss=5.0)
    assert rule.during(9.0, first_loss=9.2, step=10) is None
    assert rule.during(18.4, first_loss=9.2, step=10) is None, "exactly factor × first is still allowed"
    assert "above 2 × its first value 9.2" in rule.during(18.5, first_loss=9.2, step=10)
    assert "is nan at step 7" in rule.during(math.nan, first_loss=9.2, step=7)
    assert "is inf" in rule.during(math.inf, first_loss=9.2, step=7)


def test_a_run_ending_no_lower_than_the_unigram_entropy_learned_nothing():
    rule = DivergenceRule(factor=2.0, no_learning_loss=5.0)
    assert rule.at_end(4.99) is None
    assert "no lower than the unigram entropy of the training tokens, 5" in rule.at_end(5.0)
    assert rule.at_end(None) is None, "a run that never logged has nothing to judge"


def test_the_statement_names_every_part_and_the_factor():
    text = statement(1.5)
    assert text.endswith(".") and ". " not in text, "one sentence"
    for part in ("non-finite", "1.5 × its first logged value", "unigram entropy", "unstable",
                 "rose more than 2% above the first one", "50% of a decrease", "stable"):
        assert part in text
    assert DivergenceRule(1.5, 3.0).statement == text


def test_unigram_entropy_of_known_distributions():
    assert unigram_entropy(np.zeros(1000, dtype=np.uint16), 10) == 0.0
    assert unigram_entropy(np.arange(1024, dtype=np.uint16) % 4, 10) == pytest.approx(math.log(4))
    two = np.array([0] * 750 + [1] * 250, dtype=np.uint16)
    assert unigram_entropy(two, 2) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))


def test_a_large_file_is_estimated_from_evenly_spaced_chunks(monkeypatch):
    monkeypatch.setattr(divergence, "SAMPLE_TOKENS", 4096)
    monkeypatch.setattr(divergence, "SAMPLE_CHUNKS", 16)
    rng = np.random.default_rng(0)
    tokens = rng.choice(8, size=100_000, p=[0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05]).astype(np.uint16)
    p = np.bincount(tokens, minlength=8) / len(tokens)
    assert unigram_entropy(tokens, 8) == pytest.approx(-(p * np.log(p)).sum(), abs=0.02)


def test_a_loss_that_rises_above_its_start_is_unstable_even_if_it_comes_back():
    # The lr 0.316: 7.64 at the start, 8.30 later, well within a divergence factor of 10.
    reason = instability([7.64, 5.0, 4.0, 8.30, 3.9])
    assert "rose to 8.3 (logged value 4), above its first value 7.64" in reason
    assert DivergenceRule(10.0, 3.0).unstable([7.64, 5.0, 8.30, 3.9]) == instability([7.64, 5.0, 8.30, 3.9])


def test_a_spike_is_a_give_back_of_more_than_half_the_decrease_so_far():
    # From 8 down to 2 (a decrease of 6): back up to 5 gives back exactly half, 5.01 more than half.
    assert instability([8.0, 4.0, 2.0, 5.0, 1.9]) is None
    reason = instability([8.0, 4.0, 2.0, 5.01, 1.9])
    assert "spiked to 5.01 (logged value 4) from 2, giving back 50% of its decrease from 8" in reason


def test_a_falling_curve_with_small_batch_noise_is_stable():
    assert instability([6.0, 4.0, 3.0, 3.3, 2.9, 3.2, 2.8]) is None
    assert instability([6.0]) is None and instability([]) is None
    assert instability([6.0, 6.0, 5.0]) is None, "equal to the start is not above it"


def test_batch_noise_is_neither_a_rise_nor_a_spike():
    # A batch-4 warm-up: the second logged loss is 0.6% above the first, then the run learns; stable.
    assert instability([5.99, 6.024, 5.996, 5.934, 5.828, 5.4, 4.9]) is None
    # Half of a decrease smaller than 2% of the first value is noise, not a spike ...
    assert instability([6.0, 5.95, 5.99, 5.5]) is None
    # ... but a rise beyond 2% of the first value is a rise, and giving back half a real decrease is a spike.
    assert "above its first value" in instability([6.0, 6.2, 5.0])
    assert "spiked" in instability([6.0, 5.0, 5.6, 4.0])
