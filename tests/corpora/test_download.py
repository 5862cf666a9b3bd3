"""Downloads against a real HTTP server on 127.0.0.1: checksums, resume by Range, retries, .gz, clear errors; and
files already on the machine (a path or a file:// URL), linked or decompressed, with the same checks."""

import gzip
import hashlib
import logging
import os
import random
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cs336lm.atomic import NotARegularFileError
from cs336lm.corpora import download as download_module
from cs336lm.corpora.download import DownloadError, download, sha256sum

DATA = random.Random(0).randbytes(300_000)
TEXT = b"Once upon a time there was a file.\n" * 5_000
FILES = {  # path -> served bytes; paths name the server's misbehaviour on the first request
    "/data.bin": DATA,
    "/flaky.bin": DATA,  # drops the connection after FLAKY_BYTES
    "/busy.bin": DATA,  # answers 503 once
    "/norange.bin": DATA,  # ignores Range and always sends the whole file
    "/corpus.txt.gz": gzip.compress(TEXT, mtime=0),
    "/broken.gz": b"this is not gzip data" * 100,
    "/nolength.bin": DATA,  # no Content-Length: the body ends when the connection closes
    "/nolength_cut.bin": DATA,  # ... and the first response stops after FLAKY_BYTES, which looks like the end
    "/nosize.bin": DATA,  # no Content-Length and ignores Range: the size cannot be known
}
NO_LENGTH = {"/nolength.bin", "/nolength_cut.bin", "/nosize.bin"}
IGNORES_RANGE = {"/norange.bin", "/nosize.bin"}
CUT_ONCE = {"/flaky.bin", "/nolength_cut.bin"}
FLAKY_BYTES = 100_000
FAST = {"chunk_size": 8192, "backoff_s": 0.01, "timeout": 5.0}


class _Handler(BaseHTTPRequestHandler):
    """Serves FILES with `Range: bytes=N-` support (SimpleHTTPRequestHandler has none); HTTP/1.0, one request each."""

    def do_GET(self):
        requests = self.server.requests
        requests.append((self.path, self.headers.get("Range")))
        first = sum(path == self.path for path, _ in requests) == 1
        if self.path not in FILES:
            self.send_error(404)
            return
        if self.path == "/busy.bin" and first:
            self.send_error(503)
            return
        data, start = FILES[self.path], 0
        wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if wanted and self.path not in IGNORES_RANGE:
            start = int(wanted[1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        if self.path not in NO_LENGTH:
            self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        try:
            self.wfile.write(body[:FLAKY_BYTES] if self.path in CUT_ONCE and first else body)
        except ConnectionError:  # the client asked only for the headers (a size check) and hung up
            pass

    def log_message(self, format, *args):  # keep the test output clean
        pass


@pytest.fixture
def server():
    """A server in a thread for one test; yields (base URL, list of (path, Range header)) and stops it afterwards."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_with_checksum(server, tmp_path):
    base, requests = server
    out = tmp_path / "sub" / "data.bin"
    download(f"{base}/data.bin", out, sha256=_sha(DATA).upper(), **FAST)
    assert out.read_bytes() == DATA
    assert sha256sum(out) == _sha(DATA)
    assert [p.name for p in out.parent.iterdir()] == ["data.bin"]
    assert requests == [("/data.bin", None)]


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    base, _ = server
    url, wrong = f"{base}/data.bin", "0" * 64
    with pytest.raises(DownloadError) as info:
        download(url, tmp_path / "data.bin", sha256=wrong, **FAST)
    message = str(info.value)
    assert url in message and wrong in message and _sha(DATA) in message
    assert list(tmp_path.iterdir()) == []


def test_dropped_connection_resumes_with_range(server, tmp_path):
    base, requests = server
    out = tmp_path / "flaky.bin"
    download(f"{base}/flaky.bin", out, sha256=_sha(DATA), **FAST)
    assert out.read_bytes() == DATA
    assert requests == [("/flaky.bin", None), ("/flaky.bin", f"bytes={FLAKY_BYTES}-")]


def test_existing_part_file_is_resumed(server, tmp_path):
    base, requests = server
    out = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(DATA[:12_345])
    download(f"{base}/data.bin", out, sha256=_sha(DATA), **FAST)
    assert out.read_bytes() == DATA
    assert requests == [("/data.bin", "bytes=12345-")]
    assert not (tmp_path / "data.bin.part").exists()


def test_complete_part_file_gets_416_and_is_used(server, tmp_path):
    base, requests = server
    (tmp_path / "data.bin.part").write_bytes(DATA)
    download(f"{base}/data.bin", tmp_path / "data.bin", sha256=_sha(DATA), **FAST)
    assert (tmp_path / "data.bin").read_bytes() == DATA
    assert requests == [("/data.bin", f"bytes={len(DATA)}-")]


def test_part_file_longer_than_the_file_is_discarded(server, tmp_path):
    base, requests = server
    (tmp_path / "data.bin.part").write_bytes(DATA + b"junk")
    download(f"{base}/data.bin", tmp_path / "data.bin", sha256=_sha(DATA), **FAST)
    assert (tmp_path / "data.bin").read_bytes() == DATA
    assert requests == [("/data.bin", f"bytes={len(DATA) + 4}-"), ("/data.bin", None)]


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    base, requests = server
    (tmp_path / "norange.bin.part").write_bytes(b"stale bytes from somewhere else")
    download(f"{base}/norange.bin", tmp_path / "norange.bin", sha256=_sha(DATA), **FAST)
    assert (tmp_path / "norange.bin").read_bytes() == DATA
    assert len(requests) == 1


def test_server_error_is_retried(server, tmp_path):
    base, requests = server
    download(f"{base}/busy.bin", tmp_path / "busy.bin", **FAST)
    assert (tmp_path / "busy.bin").read_bytes() == DATA
    assert [p for p, _ in requests] == ["/busy.bin", "/busy.bin"]


def test_progress_is_logged(server, tmp_path, monkeypatch, caplog):
    base, _ = server
    monkeypatch.setattr("cs336lm.corpora.download._PROGRESS_EVERY_S", 0.0)
    with caplog.at_level(logging.INFO, logger="cs336lm.corpora.download"):
        download(f"{base}/data.bin", tmp_path / "data.bin", **FAST)
    assert re.search(r"of 0\.3 MiB \(\d+\.\d+ MiB/s\)", caplog.text)


def test_gz_url_is_decompressed(server, tmp_path):
    base, _ = server
    out = tmp_path / "corpus.txt"
    download(f"{base}/corpus.txt.gz", out, sha256=_sha(FILES["/corpus.txt.gz"]), **FAST)
    assert out.read_bytes() == TEXT
    assert [p.name for p in tmp_path.iterdir()] == ["corpus.txt"]


def test_corrupt_gz_is_an_error_and_leaves_nothing(server, tmp_path):
    base, _ = server
    url = f"{base}/broken.gz"
    with pytest.raises(DownloadError, match=re.escape(url)):
        download(url, tmp_path / "broken.txt", **FAST)
    assert list(tmp_path.iterdir()) == []


def test_404_names_url_and_status_without_retrying(server, tmp_path):
    base, requests = server
    url = f"{base}/missing.txt"
    with pytest.raises(DownloadError, match=re.escape(url) + ".*404"):
        download(url, tmp_path / "missing.txt", **FAST)
    assert len(requests) == 1
    assert list(tmp_path.iterdir()) == []


def test_connection_refused_fails_after_retries(tmp_path):
    with socket.socket() as sock:  # bind then close: a port on which nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/data.bin"
    with pytest.raises(DownloadError, match=re.escape(url) + ".*3 attempts.*refused"):
        download(url, tmp_path / "data.bin", retries=2, **FAST)
    assert not (tmp_path / "data.bin").exists()


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/data.bin", "127.0.0.1/data.bin", "data/train.txt"])
def test_bad_scheme_is_named(tmp_path, url):
    scheme = url.split("://")[0] if "://" in url else ""
    with pytest.raises(ValueError, match=f"scheme '{scheme}'"):
        download(url, tmp_path / "out", **FAST)


def test_no_content_length_is_verified_by_a_range_request(server, tmp_path):
    base, requests = server
    download(f"{base}/nolength.bin", tmp_path / "data.bin", **FAST)
    assert (tmp_path / "data.bin").read_bytes() == DATA
    assert requests == [("/nolength.bin", None), ("/nolength.bin", f"bytes={len(DATA)}-")]


def test_no_content_length_and_a_dropped_connection_resumes(server, tmp_path):
    base, requests = server
    download(f"{base}/nolength_cut.bin", tmp_path / "data.bin", **FAST)
    assert (tmp_path / "data.bin").read_bytes() == DATA
    range_from_cut = ("/nolength_cut.bin", f"bytes={FLAKY_BYTES}-")
    # the size check finds 300000 bytes where 100000 came; the resumed 206 states the size, so no second check
    assert requests == [("/nolength_cut.bin", None), range_from_cut, range_from_cut]


def test_no_size_and_no_checksum_is_a_clear_error_that_keeps_the_bytes(server, tmp_path):
    base, _ = server
    url = f"{base}/nosize.bin"
    with pytest.raises(DownloadError, match=rf"cannot verify the download of {re.escape(url)}: the server stated "
                                            r"no size .* no sha256 is configured; the 300000 bytes received are kept"):
        download(url, tmp_path / "data.bin", **FAST)
    assert not (tmp_path / "data.bin").exists()
    assert (tmp_path / "data.bin.part").read_bytes() == DATA

    download(url, tmp_path / "data.bin", sha256=_sha(DATA), **FAST)  # with the checksum the same run completes
    assert (tmp_path / "data.bin").read_bytes() == DATA


def test_a_destination_that_is_not_a_regular_file_is_refused_before_downloading(server, tmp_path):
    base, requests = server
    (tmp_path / "null").symlink_to(os.devnull)
    with pytest.raises(NotARegularFileError, match="character device"):
        download(f"{base}/data.bin", tmp_path / "null", **FAST)
    assert requests == [] and os.readlink(tmp_path / "null") == os.devnull


# ---- files already on this machine ---------------------------------------------------------------------------

@pytest.fixture
def site_copy(tmp_path):
    """A plain and a gzipped corpus in a 'shared' folder, as a cluster's data directory holds them."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "train.txt").write_bytes(TEXT)
    (shared / "owt_train.txt.gz").write_bytes(gzip.compress(TEXT, mtime=0))
    return shared


@pytest.mark.parametrize("as_url", [False, True])
def test_local_plain_file_is_linked_not_copied(site_copy, tmp_path, as_url):
    source = site_copy / "train.txt"
    spec = source.as_uri() if as_url else str(source)
    out = tmp_path / "results" / "downloads" / "train.txt"
    download(spec, out, sha256=hashlib.sha256(TEXT).hexdigest())
    assert out.is_symlink() and os.readlink(out) == str(source)
    assert out.stat().st_ino == source.stat().st_ino  # the same file, not a copy
    assert out.read_bytes() == TEXT
    assert sorted(p.name for p in out.parent.iterdir()) == ["train.txt"]  # no temp link left behind


def test_file_url_with_escapes_and_localhost(tmp_path):
    folder = tmp_path / "my data"
    folder.mkdir()
    (folder / "train.txt").write_bytes(TEXT)
    out = tmp_path / "out.txt"
    download(f"file://localhost{folder.as_posix().replace(' ', '%20')}/train.txt", out)
    assert out.resolve() == (folder / "train.txt").resolve()


def test_file_url_of_another_host_is_refused(tmp_path):
    with pytest.raises(ValueError, match="three slashes"):
        download("file://data/train.txt", tmp_path / "out.txt")


def test_local_gz_is_decompressed_once_and_checked_over_the_gz_bytes(site_copy, tmp_path):
    source = site_copy / "owt_train.txt.gz"
    out = tmp_path / "out" / "train.txt"
    download(source.as_uri(), out, sha256=sha256sum(source))  # the checksum of the .gz, as for a download
    assert not out.is_symlink() and out.read_bytes() == TEXT
    assert sorted(p.name for p in out.parent.iterdir()) == ["train.txt"]
    with pytest.raises(DownloadError, match="sha256 mismatch"):  # the text's checksum is not the file's
        download(str(source), tmp_path / "other.txt", sha256=hashlib.sha256(TEXT).hexdigest())
    assert not (tmp_path / "other.txt").exists()


def test_local_missing_file_is_named(tmp_path):
    missing = tmp_path / "shared" / "nowhere.txt"
    for spec in (str(missing), missing.as_uri()):
        with pytest.raises(DownloadError, match=re.escape(f"no such file {missing}")):
            download(spec, tmp_path / "out.txt")
    with pytest.raises(DownloadError, match="not a regular file"):
        download(str(tmp_path), tmp_path / "out.txt")
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize("name", ["train.txt", "owt_train.txt.gz"])
def test_local_checksum_mismatch_keeps_nothing(site_copy, tmp_path, name):
    source = site_copy / name
    stored = source.read_bytes()
    with pytest.raises(DownloadError, match=re.escape(f"sha256 mismatch for {source}: expected {'0' * 64}, got "
                                                      f"{hashlib.sha256(stored).hexdigest()}")):
        download(str(source), tmp_path / "out.txt", sha256="0" * 64)
    assert list(tmp_path.iterdir()) == [site_copy]
    assert source.read_bytes() == stored  # the site's copy untouched


@pytest.mark.parametrize("name", ["train.txt", "owt_train.txt.gz"])
def test_local_unreadable_file_is_named(site_copy, tmp_path, monkeypatch, name):
    source = site_copy / name
    real_open = open

    # A site's file without read permission; simulated, since root (CI) reads any file whatever its mode.
    def no_permission(file, *args, **kwargs):
        if os.fspath(file) == str(source):
            raise PermissionError(13, "Permission denied", str(source))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(download_module, "open", no_permission, raising=False)
    out = tmp_path / "out.txt"
    with pytest.raises(DownloadError, match=re.escape(f"cannot read {source}: Permission denied")):
        download(str(source), out)
    assert list(tmp_path.iterdir()) == [site_copy]


def test_local_damaged_gz_is_named_and_leaves_nothing(site_copy, tmp_path):
    source = site_copy / "owt_train.txt.gz"
    source.write_bytes(source.read_bytes()[:-100])
    with pytest.raises(DownloadError, match=re.escape(f"cannot decompress {source}")):
        download(str(source), tmp_path / "out.txt")
    assert list(tmp_path.iterdir()) == [site_copy]
