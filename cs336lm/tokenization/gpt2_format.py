"""GPT-2's tokenizer file format: the printable stand-in character for each byte, and vocab.json + merges.txt
(read by `load_gpt2_files`, written by `save_gpt2_files`; loadable by HF tokenizers and tiktoken as well)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from cs336lm.atomic import atomic_write_text


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte: printable Latin-1 bytes map to themselves, the other 68 bytes
    to chr(256 + n) in byte order (so a space is "Ġ", a newline "Ċ")."""
    printable = [b for b in range(256) if chr(b).isprintable() and chr(b) != " "]
    table = {b: chr(b) for b in printable}
    n = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + n)
            n += 1
    return table


@lru_cache(maxsize=1)
def _decode_table() -> dict[int, str]:
    """str.translate table: each stand-in to the Latin-1 character of its byte; other low characters to
    U+FFFF, which (like any character above the stand-ins) then fails the Latin-1 encode."""
    table = {c: "\uffff" for c in range(512)}
    table.update({ord(c): chr(b) for b, c in bytes_to_unicode().items()})
    return table


def token_to_str(token: bytes) -> str:
    """A token's bytes written with GPT-2's stand-ins: `token_to_str(b" hi\\n") == "ĠhiĊ"`."""
    table = bytes_to_unicode()
    return "".join(table[b] for b in token)


def str_to_token(text: str, where: str) -> bytes:
    """The bytes a stand-in string names; `where` (file and line) goes into the error for any other character."""
    try:
        return text.translate(_decode_table()).encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{where}: {text!r} has characters outside GPT-2's byte alphabet") from None


def load_gpt2_files(
    vocab_path: str | os.PathLike, merges_path: str | os.PathLike, special_tokens: Sequence[str] | None = None
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """(vocab, merges) from vocab.json ({token string: id}) and merges.txt ("left right" per line, an optional
    "#version" header). Every merge's tokens and every special token must be in the vocab."""
    with open(vocab_path, encoding="utf-8") as f:
        raw = json.load(f)
    vocab = {int(i): str_to_token(s, f"{vocab_path}: token") for s, i in raw.items()}
    known = set(vocab.values())
    merges = []
    with open(merges_path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or (lineno == 1 and line.startswith("#version")):
                continue
            parts = line.split(" ")
            if len(parts) != 2:
                raise ValueError(f"{merges_path}:{lineno}: expected 'left right', got {line!r}")
            pair = tuple(str_to_token(p, f"{merges_path}:{lineno}") for p in parts)
            for p, t in zip(parts, pair, strict=True):
                if t not in known:
                    raise ValueError(f"{merges_path}:{lineno}: token {p!r} is not in {vocab_path}")
            merges.append(pair)
    for s in special_tokens or ():
        if s.encode("utf-8") not in known:
            raise ValueError(f"special token {s!r} is not in {vocab_path}")
    return vocab, merges


def save_gpt2_files(
    vocab: dict[int, bytes], merges: Sequence[tuple[bytes, bytes]], directory: str | os.PathLike
) -> tuple[Path, Path]:
    """Write `vocab.json` and `merges.txt` into `directory`, each atomically; returns their paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    vocab_json = json.dumps({token_to_str(t): i for i, t in sorted(vocab.items())}, ensure_ascii=False)
    merges_txt = "#version: 0.2\n" + "".join(f"{token_to_str(a)} {token_to_str(b)}\n" for a, b in merges)
    paths = (out / "vocab.json", out / "merges.txt")
    for path, text in zip(paths, (vocab_json, merges_txt), strict=True):
        atomic_write_text(path, text)
    return paths
