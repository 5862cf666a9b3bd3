"""The language model itself, every component from scratch (handout §3–§4, §6): layers, attention, the
Transformer, losses, AdamW and the schedule, batches, decoding, and parameter/FLOP accounting."""
