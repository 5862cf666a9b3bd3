"""Resumable, checksummed corpus downloads (TinyStories V2, OpenWebText) with the standard library only, and
copies already on the site's file system.

Bytes stream into `<out_path>.part`, which a rerun resumes with an HTTP Range request; the file as served is checked
against a sha256, a `.gz` URL is decompressed on the way to out_path, and out_path appears only when complete.
The build machines have no internet, so the tests exercise all of this against a local HTTP server.
A local source (an absolute path or a file:// URL) is checked the same way and then linked, never copied: out_path
becomes a symlink to a plain file, or the decompressed text of a `.gz` one.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from cs336lm.atomic import atomic_path, check_replaceable, move_into_place

log = logging.getLogger(__name__)

_PROGRESS_EVERY_S = 5.0
_MAX_BACKOFF_S = 60.0
# Worth another try: the server may be restarting or overloaded (408 timeout, 429 rate limit, 5xx).
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class DownloadError(RuntimeError):
    """A download failed for good; the message names the URL or file and the reason (HTTP status, checksum,
    network, a missing or unreadable file)."""


class _Transient(Exception):
    """A failure that a retry, resuming from the .part file, may fix."""


def sha256sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so a multi-GB corpus never sits in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, out_path: str | os.PathLike, sha256: str | None = None, *, retries: int = 5,
             timeout: float = 60.0, chunk_size: int = 1 << 20, backoff_s: float = 1.0) -> None:
    """Fetch url into out_path, resuming `<out_path>.part` and retrying transient failures `retries` times.

    sha256, when given, is of the bytes as served (the .gz file for a .gz URL); a mismatch removes the .part and
    raises DownloadError. Without it the size is checked instead: against Content-Length, or, when the server sent
    none, against the size a range request reports; a server that states no size at all is a DownloadError that
    keeps the .part. A URL whose path ends in `.gz` leaves the decompressed data at out_path.
    An absolute path or a file:// URL is a file on this machine: see use_local.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme == "file" or url.startswith("/"):
        use_local(url, out_path, sha256, chunk_size=chunk_size)
        return
    if scheme not in ("http", "https"):
        raise ValueError(f"cannot download {url!r}: URL scheme {scheme!r} is not http, https or file, "
                         "and it is not an absolute path")
    out_path = Path(out_path)
    check_replaceable(out_path)  # before the download, not after it
    out_path.parent.mkdir(parents=True, exist_ok=True)
    part = out_path.with_name(out_path.name + ".part")
    for attempt in range(retries + 1):
        try:
            size = _fetch(url, part, timeout, chunk_size)
            if size is None and sha256 is None:
                _check_size(url, part, timeout)
            break
        except (_Transient, OSError, http.client.HTTPException) as e:  # URLError, resets and timeouts are OSErrors
            reason = getattr(e, "reason", None) or e
            if attempt == retries:
                raise DownloadError(f"download of {url} failed after {retries + 1} attempts: {reason}") from e
            delay = min(backoff_s * 2**attempt, _MAX_BACKOFF_S)
            log.warning("download of %s failed (%s); retry %d/%d in %.1f s", url, reason, attempt + 1, retries, delay)
            time.sleep(delay)
    if sha256 is not None:
        actual = sha256sum(part)
        if actual != sha256.lower():
            part.unlink()
            raise DownloadError(f"sha256 mismatch for {url}: expected {sha256.lower()}, got {actual}")
    if urllib.parse.urlsplit(url).path.endswith(".gz"):
        _gunzip(url, part, out_path, chunk_size)
    else:
        move_into_place(part, out_path)
    log.info("downloaded %s to %s", url, out_path)


def _fetch(url: str, part: Path, timeout: float, chunk_size: int) -> int | None:
    """One attempt: append to part from its current size; raise _Transient (or an OSError) to be retried.

    Returns the file's size if the server stated it (part then holds exactly that many bytes), else None.
    """
    offset = part.stat().st_size if part.exists() else 0
    # identity: a server that gzips on the fly would make Range offsets and the checksum refer to other bytes.
    headers = {"User-Agent": "cs336lm-download", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        log.info("resuming %s at byte %d", url, offset)
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and offset:
            # The range starts at or past the end: the .part is complete unless the server says the size differs.
            total = _total_from_content_range(e.headers.get("Content-Range", ""))
            if total in (None, offset):
                return total
            part.unlink()
            raise _Transient(f"{part.name} holds {offset} bytes but the server has {total}; restarting") from e
        if e.code in _RETRY_STATUSES:
            raise _Transient(f"HTTP {e.code} {e.reason}") from e
        raise DownloadError(f"cannot download {url}: HTTP {e.code} {e.reason}") from e
    with response:
        if response.status == 206:
            match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", "").strip())
            if not match or int(match[1]) != offset:
                part.unlink()
                raise _Transient(f"server answered a range request with Content-Range {match and match[0]!r}")
            mode, total = "ab", None if match[2] == "*" else int(match[2])
        else:
            if offset:
                log.info("%s ignored the range request; restarting from byte 0", url)
            length = response.headers.get("Content-Length")
            mode, offset, total = "wb", 0, int(length) if length else None
        _stream(url, response, part, mode, offset, total, chunk_size)
    return total


def _stream(url: str, response: http.client.HTTPResponse, part: Path, mode: str, offset: int, total: int | None,
            chunk_size: int) -> None:
    """Copy the body into part from byte offset, logging progress; a short body is a _Transient failure."""
    done, start = offset, time.monotonic()
    last_log = start
    with open(part, mode) as f:
        while chunk := response.read(chunk_size):
            f.write(chunk)
            done += len(chunk)
            now = time.monotonic()
            if now - last_log >= _PROGRESS_EVERY_S:
                rate = (done - offset) / (now - start)
                of_total = f" of {total / 2**20:.1f}" if total else ""
                log.info("%s: %.1f%s MiB (%.2f MiB/s)", url, done / 2**20, of_total, rate / 2**20)
                last_log = now
    # http.client returns b"" rather than raising when a connection drops before Content-Length is reached.
    if total is not None and done != total:
        raise _Transient(f"connection closed after {done} of {total} bytes")


def _check_size(url: str, part: Path, timeout: float) -> None:
    """Verify a download whose size the server did not state: a range request from the end asks for the size.

    A body with no Content-Length ends when the connection closes, so a dropped connection looks like the end.
    """
    size = part.stat().st_size
    request = urllib.request.Request(url, headers={"User-Agent": "cs336lm-download", "Accept-Encoding": "identity",
                                                   "Range": f"bytes={size}-"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # the headers are enough: no body read
            if response.status == 206:
                served = _total_from_content_range(response.headers.get("Content-Range", ""))
            else:
                served = int(response.headers["Content-Length"]) if response.headers.get("Content-Length") else None
    except urllib.error.HTTPError as e:
        e.close()
        if e.code != 416:
            raise _Transient(f"HTTP {e.code} {e.reason} when asking for the size") from e
        served = _total_from_content_range(e.headers.get("Content-Range", ""))
    if served is None:
        raise DownloadError(
            f"cannot verify the download of {url}: the server stated no size (no Content-Length, no answer to a "
            f"range request) and no sha256 is configured; the {size} bytes received are kept in {part}: give the "
            "file's sha256 (the `sha256:` of its data source) and run again to check them without downloading again"
        )
    if served != size:
        raise _Transient(f"the connection closed after {size} of {served} bytes")
    log.info("%s: size %d bytes confirmed by a range request", url, size)


def _total_from_content_range(value: str) -> int | None:
    """The complete size from `bytes */N` (a 416) or `bytes A-B/N` (a 206); None if absent or `*`."""
    match = re.fullmatch(r"bytes (?:\*|\d+-\d+)/(\d+)", value.strip())
    return int(match[1]) if match else None


def _gunzip(url: str, part: Path, out_path: Path, chunk_size: int) -> None:
    """Decompress the finished .part into out_path via a temp file, so a crash never leaves half a corpus."""
    try:
        with atomic_path(out_path) as tmp, gzip.open(part, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, chunk_size)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:  # corrupt or truncated: a fresh download is needed
        part.unlink()
        raise DownloadError(f"cannot decompress {url}: {e}") from e
    part.unlink()


def _local_path(source: str) -> Path:
    """The file an absolute path or a file:// URL names (percent-escapes decoded, as in any URL)."""
    parts = urllib.parse.urlsplit(source)
    if parts.scheme != "file":
        return Path(source)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"cannot use {source!r}: a file:// URL names a file on this machine, not on host "
                         f"{parts.netloc!r} (write file:///path, with three slashes)")
    return Path(urllib.request.url2pathname(parts.path))


def use_local(source: str, out_path: str | os.PathLike, sha256: str | None = None, *,
              chunk_size: int = 1 << 20) -> None:
    """Make out_path the corpus text of a file on this machine (an absolute path or a file:// URL), never a copy.

    A plain file is symlinked (its sha256, when given, checked first); a `.gz` file is decompressed once into
    out_path, and its sha256 is of the .gz file itself, as for a download. A missing, unreadable or mismatching
    file is a DownloadError naming it; out_path appears only when everything checked out.
    """
    path = _local_path(source)
    out_path = Path(out_path)
    check_replaceable(out_path)
    if not path.exists():
        raise DownloadError(f"cannot use {source}: no such file {path}")
    if not path.is_file():
        raise DownloadError(f"cannot use {source}: {path} is not a regular file")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.name.endswith(".gz"):
            _gunzip_local(source, path, out_path, sha256, chunk_size)
        else:
            _link_local(source, path, out_path, sha256, chunk_size)
    except OSError as e:
        if e.filename != str(path):  # writing out_path failed: not a problem of the source
            raise
        raise DownloadError(f"cannot read {source}: {e.strerror} ({path})") from e
    log.info("using %s as %s", path, out_path)


def _check_sha256(source: str, actual: str, sha256: str | None) -> None:
    if sha256 is not None and actual != sha256.lower():
        raise DownloadError(f"sha256 mismatch for {source}: expected {sha256.lower()}, got {actual}")


def _link_local(source: str, path: Path, out_path: Path, sha256: str | None, chunk_size: int) -> None:
    """Symlink out_path to path after checking it can be read (and its sha256): a bad file fails here, not later."""
    if sha256 is None:
        with open(path, "rb") as f:
            f.read(1)
    else:
        _check_sha256(source, sha256sum(path, chunk_size), sha256)
    link = out_path.with_name(f".{out_path.name}.{os.getpid()}.link")
    link.unlink(missing_ok=True)
    link.symlink_to(path)
    try:
        move_into_place(link, out_path)
    except BaseException:
        link.unlink(missing_ok=True)
        raise


class _HashingReader:
    """A binary file whose bytes, as they are read, also go into a sha256 (one pass over a multi-GB .gz)."""

    def __init__(self, f):
        self.f, self.digest = f, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.digest.update(data)
        return data


def _gunzip_local(source: str, path: Path, out_path: Path, sha256: str | None, chunk_size: int) -> None:
    """Decompress path into out_path via a temp file, hashing the .gz bytes on the way; a mismatch keeps nothing."""
    try:
        with open(path, "rb") as raw, atomic_path(out_path) as tmp:
            hashed = _HashingReader(raw)
            with gzip.GzipFile(fileobj=hashed, mode="rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, chunk_size)
            _check_sha256(source, hashed.digest.hexdigest(), sha256)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        if sha256 is not None:  # the wrong file rather than a damaged one: say so
            _check_sha256(source, sha256sum(path, chunk_size), sha256)
        raise DownloadError(f"cannot decompress {source}: {e}") from e
