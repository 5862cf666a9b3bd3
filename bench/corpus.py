"""The benchmarks' corpus: unrepeated English-like text from what this machine has installed.

Documents come from the docstrings and comments of every installed Python file (standard library and
site-packages), the English man pages and the text files under /usr/share/doc. Each document is cut into
paragraphs and a paragraph seen before (by hash, anywhere) is dropped, so no text repeats: a licence that twenty
packages ship appears once. Documents are shuffled with a seed and written one after another, each followed by
"<|endoftext|>", until the requested size; the file and a manifest (sources, documents, sha256) are cached.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

SPECIAL = "<|endoftext|>"
_STRING = re.compile(r'("""|\'\'\')(.*?)\1', re.S)
_COMMENT = re.compile(r"^[ \t]*#+ ?(.*)$", re.M)
_ROFF_REQUEST = re.compile(r"^[.'].*$", re.M)
_ROFF_ESCAPE = re.compile(r"\\(f[BIRP]|f\(..|\(..|[-&|^e])")
_PARAGRAPH = re.compile(r"\n[ \t]*\n")


def _python_documents() -> Iterator[tuple[str, str]]:
    roots = {sysconfig.get_paths()["stdlib"], *(p for p in sys.path if p.endswith("-packages"))}
    for root in sorted(roots):
        for path in sorted(Path(root).rglob("*.py")):
            try:
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            parts = [m.group(2) for m in _STRING.finditer(source)] + ["\n".join(_COMMENT.findall(source))]
            yield "python", "\n\n".join(parts)


def _read_maybe_gzipped(path: Path) -> str | None:
    try:
        raw = path.read_bytes()
        raw = gzip.decompress(raw) if path.suffix == ".gz" else raw
        if b"\0" in raw[:4096]:
            return None
        return raw.decode("utf-8")
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError):
        return None


def _man_documents() -> Iterator[tuple[str, str]]:
    for section in sorted(Path("/usr/share/man").glob("man[1-8]")):  # English pages only
        for path in sorted(section.iterdir()):
            text = _read_maybe_gzipped(path) if path.is_file() else None
            if text:
                yield "man", _ROFF_ESCAPE.sub("", _ROFF_REQUEST.sub("", text))


def _doc_documents() -> Iterator[tuple[str, str]]:
    for path in sorted(Path("/usr/share/doc").rglob("*")):
        text = _read_maybe_gzipped(path) if path.is_file() and not path.is_symlink() else None
        if text:
            yield "doc", text


def unique_documents() -> list[tuple[str, str]]:
    """(source, text) of every installed document, each paragraph kept only at its first appearance."""
    seen: set[bytes] = set()
    docs = []
    for generate in (_python_documents, _man_documents, _doc_documents):
        for source, text in generate():
            kept = []
            for paragraph in _PARAGRAPH.split(text.replace(SPECIAL, "")):
                paragraph = paragraph.strip()
                digest = hashlib.blake2b(paragraph.encode("utf-8", "replace"), digest_size=16).digest()
                if paragraph and digest not in seen:
                    seen.add(digest)
                    kept.append(paragraph)
            if kept:
                docs.append((source, "\n\n".join(kept)))
    return docs


def make_corpus(mb: float = 20, cache_dir: str | Path | None = None, seed: int = 0) -> Path:
    """Write (once) and return a corpus of `mb` megabytes of unrepeated text; raises if the machine has less."""
    cache = Path(cache_dir or Path(tempfile.gettempdir()) / "cs336lm-bench")
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"unrepeated-{mb:g}MB-seed{seed}.txt"
    if path.exists():
        return path
    docs = unique_documents()
    random.Random(seed).shuffle(docs)
    target, size, used = int(mb * 1e6), 0, {}
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for source, text in docs:
            if size >= target:
                break
            if size + len(text.encode("utf-8")) > target:  # the last document: only the paragraphs that fit
                kept, room = [], target - size
                for paragraph in text.split("\n\n"):
                    room -= len(paragraph.encode("utf-8")) + 2
                    if kept and room < 0:
                        break
                    kept.append(paragraph)
                text = "\n\n".join(kept)
            piece = text + "\n" + SPECIAL + "\n"
            f.write(piece)
            size += len(piece.encode("utf-8"))
            used[source] = used.get(source, 0) + 1
    if size < target:
        tmp.unlink()
        raise SystemExit(f"this machine has only {size / 1e6:.0f} MB of unrepeated text; ask for less than {mb} MB")
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    manifest = {"megabytes": size / 1e6, "documents": sum(used.values()), "by_source": used, "sha256": digest}
    path.with_suffix(".json").write_text(json.dumps(manifest, indent=1))
    tmp.replace(path)
    return path


def describe(path: Path) -> str:
    """One line about a corpus from its manifest."""
    m = json.loads(path.with_suffix(".json").read_text())
    sources = ", ".join(f"{n} {s}" for s, n in sorted(m["by_source"].items()))
    return f"{path.name}: {m['megabytes']:.1f} MB, {m['documents']} documents ({sources}), sha256 {m['sha256'][:12]}"
