"""Atomic file writes: build the file under a temporary name in the same folder and os.replace() it into place,
so a reader (or the next workflow step) sees the old file or the whole new one, never half of one. Only regular
files are ever replaced: a rename onto /dev/null, a FIFO or a device would put a file where the device was."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

_KINDS = {stat.S_ISDIR: "directory", stat.S_ISCHR: "character device", stat.S_ISBLK: "block device",
          stat.S_ISFIFO: "FIFO (named pipe)", stat.S_ISSOCK: "socket"}


class NotARegularFileError(OSError):
    """The destination of an atomic write exists and is not a regular file (a device, FIFO, socket, directory)."""


def check_replaceable(path: str | os.PathLike) -> None:
    """Raise NotARegularFileError unless `path` is absent or (through any symlinks) a regular file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS.items() if test(mode)), "special file")
    via = f" (a symlink to {os.path.realpath(path)})" if os.path.islink(path) else ""
    raise NotARegularFileError(
        f"refusing to write {os.fspath(path)}{via}: it is a {kind}, not a regular file, and an atomic write would "
        f"replace the {kind} itself; give the path of a regular file"
    )


def move_into_place(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """os.replace(src, dst) for a finished file, refusing a `dst` that is not a regular file."""
    check_replaceable(dst)
    os.replace(src, dst)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` for the caller to write; on success it replaces `path`, on any
    exception (KeyboardInterrupt included) it is removed and `path` is left as it was.

    A `path` that is not a regular file is refused before anything is written (NotARegularFileError), and checked
    again before the rename. The temp is in the same folder because os.replace is atomic only within one
    filesystem. It is an ordinary named file, not mkstemp's, so the result gets the umask's permissions rather
    than 0600; the pid and a random token keep concurrent writers of the same path apart, and the leading dot
    keeps it out of globs.
    """
    path = Path(path)
    check_replaceable(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        move_into_place(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` as UTF-8 to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
