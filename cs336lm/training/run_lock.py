"""One trainer per run directory: an exclusive `fcntl.flock` on a lock file in the run's
`progress/`, held for the whole run. When Snakemake dies on a Slurm login node its jobs keep running, and a rerun
could submit the same run again; the second trainer then stops at once, naming the holder. The kernel drops the
lock when its holder dies, kill -9 included, so no stale lock is ever left to clean up.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


class RunLockedError(RuntimeError):
    """Another trainer holds the run directory's lock; the message names it (pid, host, start time)."""


@contextlib.contextmanager
def run_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold the lock file `path` exclusively for the block, with this process's pid, host and start time in it;
    raise RunLockedError at once if another process holds it. The file is removed on leaving."""
    path = Path(path)
    fd = _acquire(path)
    try:
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        yield
    finally:
        # Unlinking while still holding the lock: a trainer that opens the path afterwards creates a new file,
        # and one that opened the old file before finds, after locking it, that the path no longer leads there.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)


def _acquire(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLockedError(_held_by(path)) from None
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                os.close(fd)
                raise
            log.warning("the file system of %s does not support locks (%s): nothing stops a second trainer on this "
                        "run directory", path, exc)
            return fd
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder finished and removed the file between our open and our lock: try again


def _held_by(path: Path) -> str:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        who = f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        who = "a process that has not yet written its name"
    return (f"another trainer is already training this run: {path} is locked by {who}. Wait for it to finish "
            "(or stop it, e.g. scancel its Slurm job) and run again; this process changed nothing.")
