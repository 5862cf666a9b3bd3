"""cs336lm: Stanford CS336 Assignment 1 ("basics") from scratch, as an importable package."""

__version__ = "0.1.0"
