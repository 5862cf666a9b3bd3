"""Atomic file writes: build the file under a temporary name in the same folder and os.replace() it into place,
so a reader (or the next workflow step) sees the old file or the whole new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` for the caller to write; on success it replaces `path`, on any
    exception (KeyboardInterrupt included) it is removed and `path` is left as it was.

    The temp is in the same folder because os.replace is atomic only within one filesystem. It is an ordinary
    named file, not mkstemp's, so the result gets the umask's permissions rather than 0600; the pid and a random
    token keep concurrent writers of the same path apart, and the leading dot keeps it out of globs.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` as UTF-8 to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
