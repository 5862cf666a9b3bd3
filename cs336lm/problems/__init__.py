"""The handout's written problems as code (unicode, toy SGD, Transformer and AdamW accounting) and its `generate`
deliverable's sample sheets and quality measures."""
