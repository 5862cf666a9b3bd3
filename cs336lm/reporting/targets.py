"""The handout's targets and budgets, and the best result of the course's 2025 leaderboard: the one place the
report's sentences, figures and "reference" column read them from."""

from __future__ import annotations

# Handout §7.2 deliverable: "A model with validation loss (per-token) on TinyStories of at most 1.45".
TINYSTORIES_TARGET = 1.45
# Handout §7.5: "at most 1.5 hours on an H100", expected "to beat at least the naive baseline of a 5.0 loss".
LEADERBOARD_H100_HOURS = 1.5
LEADERBOARD_BASELINE = 5.0
# The best OpenWebText validation loss published on the 2025 course leaderboard, within the same budget.
LEADERBOARD_BEST = 3.0117
# Handout §2.5, train_bpe_tinystories and train_bpe_expts_owt: "Resource requirements".
BPE_BUDGETS = {"tinystories": "≤ 30 min and ≤ 30 GB RAM, no GPU (under 2 minutes is possible)",
               "owt": "≤ 12 h and ≤ 100 GB RAM, no GPU"}

# Whose numbers these are, and each as an entry of the report's reference column (cs336lm.reporting.reference).
SOURCES = {
    "handout": {"title": "the assignment handout (CS336 Spring 2025, assignment 1)",
                "setup": "targets and budgets the handout states"},
    "leaderboard": {"title": "the 2025 course leaderboard",
                    "setup": f"OpenWebText, at most {LEADERBOARD_H100_HOURS:g} H100-hours"},
}
VALUES = {
    "tinystories_target": {"value": TINYSTORIES_TARGET, "source": "handout",
                           "note": "validation loss; 30-40 min on one H100 for 327.68M tokens"},
    "leaderboard_baseline": {"value": LEADERBOARD_BASELINE, "source": "handout"},
    "leaderboard_best": {"value": LEADERBOARD_BEST, "source": "leaderboard"},
    **{f"bpe_budget/{dataset}": {"value": budget, "source": "handout"} for dataset, budget in BPE_BUDGETS.items()},
}
