"""Byte-level BPE tokenization (handout §2): pre-tokenization, BPE training, the tokenizer, uint16 token files and
the §2.7 measurements. Modules import one way: gpt2_format, chunks, segments -> pretokenize -> bpe -> bpe_jobs;
pretokenize, segments -> tiktoken_path -> tokenizer -> token_files, stats."""

from cs336lm.tokenization.bpe import train_bpe
from cs336lm.tokenization.pretokenize import count_pretokens
from cs336lm.tokenization.token_files import open_tokens, tokenize_file
from cs336lm.tokenization.tokenizer import Tokenizer

__all__ = ["Tokenizer", "count_pretokens", "open_tokens", "tokenize_file", "train_bpe"]
