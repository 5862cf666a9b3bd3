"""The answers to handout §2 `unicode1` and `unicode2`, demonstrated by running the code they are about: chr(0)'s
repr against its printed form, the byte length of text in UTF-8/16/32, the handout's per-byte decoder failing on
a real input, and two-byte sequences that are not UTF-8."""

from __future__ import annotations

import io
from collections.abc import Mapping

import pandas as pd

HANDOUT_SAMPLE = "hello! こんにちは!"  # the handout's own example string
NOT_UTF8 = (b"\xc0\xaf", b"\x80\x80", b"\xe3\x81")  # overlong '/', a lone continuation pair, a cut 3-byte character


def decode_utf8_bytes_to_str_wrong(bytestring: bytes) -> str:
    """The handout's incorrect decoder: decodes each byte on its own."""
    return "".join([bytes([b]).decode("utf-8") for b in bytestring])


def _printed(value: str) -> str:
    """What print() writes for `value`, captured, shown as its code points (a NUL prints as nothing visible)."""
    out = io.StringIO()
    print(value, end="", file=out)
    return out.getvalue()


def unicode1() -> pd.DataFrame:
    """(a) what chr(0) is, (b) its repr against its printed form, (c) what it does inside text."""
    text = "this is a test" + chr(0) + "string"
    rows = [
        ("chr(0)", repr(chr(0)), "U+0000, the NULL control character"),
        ("repr(chr(0))", repr(repr(chr(0))), "the escape sequence, 6 visible characters with the quotes"),
        ("print(chr(0)) writes", repr(_printed(chr(0))), f"{len(_printed(chr(0)))} character, invisible on a terminal"),
        ('"this is a test" + chr(0) + "string"', repr(text), f"{len(text)} characters: the NUL stays in the string"),
        ("print(that string) writes", repr(_printed(text)),
         "the text with an invisible NUL between 'test' and 'string'"),
    ]
    return pd.DataFrame(rows, columns=["expression", "value (repr)", "note"])


def encoded_lengths(samples: Mapping[str, str]) -> pd.DataFrame:
    """Characters of each sample and its bytes (and zero bytes) in UTF-8, UTF-16 and UTF-32, without byte-order mark."""
    rows = []
    for name, text in samples.items():
        row = {"input": name, "characters": len(text)}
        for codec in ("utf-8", "utf-16-le", "utf-32-le"):
            data = text.encode(codec)
            label = codec.removesuffix("-le").replace("-", "")
            row[f"{label}_bytes"] = len(data)
            row[f"{label}_zero_bytes"] = data.count(0)
        rows.append(row)
    return pd.DataFrame(rows)


def unicode2(samples: Mapping[str, str]) -> pd.DataFrame:
    """One table, `part` saying which question a row answers: (a) encoded lengths of the handout's example and the
    given text samples; (b) the per-byte decoder on ASCII and on a multi-byte character; (c) two-byte sequences
    that decode to nothing (`result` holds what decoding gave)."""
    lengths = encoded_lengths({"handout example": HANDOUT_SAMPLE, **samples}).assign(part="(a)", result="")
    rows = [{"part": "(b)", "input": repr(text.encode("utf-8")),
             "result": _outcome(decode_utf8_bytes_to_str_wrong, text.encode("utf-8"))} for text in ("hello", "héllo")]
    rows += [{"part": "(c)", "input": repr(data), "result": _outcome(lambda b: b.decode("utf-8"), data)}
             for data in NOT_UTF8]
    table = pd.concat([lengths, pd.DataFrame(rows)], ignore_index=True)
    return table[["part", "input", *(c for c in table.columns if c not in ("part", "input", "result")), "result"]]


def _outcome(decode, data: bytes) -> str:
    try:
        return f"decodes to {decode(data)!r}"
    except UnicodeDecodeError as error:
        return f"UnicodeDecodeError on {error.object!r}: {error.reason}"
