"""Fetching a customer's file from a URL into the bucket (moto's S3), from a loopback HTTP server: streaming, the
size cap, redirects re-checked at every hop, and the deployed address rules."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from functions.adapters.blobs import BlobStore
from functions.adapters.remote_file import RemoteFiles
from functions.errors import FetchError
from local.runtime import LocalRuntime

TRICKLE = 0.2  # seconds between the bytes (or header lines) of the slow routes
BIG = b"email\r\n" + b"".join(b"user%d@example.com\r\n" % i for i in range(600_000))  # ~13 MB: a multipart upload


class Files(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        routes = {
            "/leads.csv": lambda: self._send(b"email\r\na@example.com\r\n"),
            "/big.csv": lambda: self._send(BIG),
            "/chunked.csv": self._chunked,
            "/moved": lambda: self._redirect("/leads.csv"),
            "/to-metadata": lambda: self._redirect("http://169.254.169.254/latest/meta-data/"),
            "/loop": lambda: self._redirect("/loop"),
            "/trickle.csv": self._trickle,
            "/slow-headers.csv": self._slow_headers,
            "/to-userinfo": lambda: self._redirect(
                f"http://user:secret@127.0.0.1:{self.server.server_address[1]}/leads.csv"
            ),
            "/to-space": lambda: self._redirect("/leads .csv"),
        }
        route = routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        route()

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _chunked(self) -> None:
        # No Content-Length: the size is only known while reading.
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for _ in range(100):
            piece = b"x" * 10_000
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def _trickle(self) -> None:
        # Headers at once, then one byte at a time, with no Content-Length: every read gets something.
        self.send_response(200)
        self.end_headers()
        for _ in range(200):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(TRICKLE)

    def _slow_headers(self) -> None:
        # The status line at once, then a header line at a time: the response never starts.
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for i in range(200):
            self.wfile.write(b"X-Pad-%d: y\r\n" % i)
            self.wfile.flush()
            time.sleep(TRICKLE)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture()
def blobs(runtime: LocalRuntime) -> BlobStore:
    return BlobStore(runtime.bucket)


def local(blobs: BlobStore) -> RemoteFiles:
    return RemoteFiles(blobs, allow_private=True, timeout_seconds=30)


def test_a_file_is_streamed_into_the_bucket_whole(origin: str, blobs: BlobStore) -> None:
    size = local(blobs).fetch(f"{origin}/big.csv", "uploads/acct_t/job_big.csv", max_bytes=50_000_000)
    assert size == len(BIG) and blobs.get("uploads/acct_t/job_big.csv") == BIG


def test_a_redirect_is_followed_and_checked_again(origin: str, blobs: BlobStore) -> None:
    local(blobs).fetch(f"{origin}/moved", "uploads/acct_t/job_moved.csv", max_bytes=1000)
    assert blobs.get("uploads/acct_t/job_moved.csv") == b"email\r\na@example.com\r\n"
    # A redirect to the cloud metadata address is refused even where loopback is allowed
    with pytest.raises(FetchError) as err:
        local(blobs).fetch(f"{origin}/to-metadata", "uploads/acct_t/job_meta.csv", max_bytes=1000)
    assert err.value.code == "fetch_blocked" and blobs.head("uploads/acct_t/job_meta.csv") is None
    with pytest.raises(FetchError) as err:
        local(blobs).fetch(f"{origin}/loop", "uploads/acct_t/job_loop.csv", max_bytes=1000)
    assert err.value.code == "fetch_failed" and "redirects" in err.value.message


def test_a_file_over_the_limit_is_refused_whether_it_says_its_size_or_not(origin: str, blobs: BlobStore) -> None:
    with pytest.raises(FetchError) as err:
        local(blobs).fetch(f"{origin}/big.csv", "uploads/acct_t/job_declared.csv", max_bytes=1_000_000)
    assert err.value.code == "fetch_too_large" and err.value.details["max_bytes"] == 1_000_000
    with pytest.raises(FetchError) as err:
        local(blobs).fetch(f"{origin}/chunked.csv", "uploads/acct_t/job_chunked.csv", max_bytes=500_000)
    assert err.value.code == "fetch_too_large"
    # and nothing is left in the bucket
    assert (
        blobs.head("uploads/acct_t/job_declared.csv") is None and blobs.head("uploads/acct_t/job_chunked.csv") is None
    )


def test_an_error_answer_is_a_failed_fetch(origin: str, blobs: BlobStore) -> None:
    with pytest.raises(FetchError) as err:
        local(blobs).fetch(f"{origin}/missing.csv", "uploads/acct_t/job_404.csv", max_bytes=1000)
    assert err.value.code == "fetch_failed" and "404" in err.value.message


@pytest.mark.parametrize(
    "path",
    ["http://127.0.0.1:{port}/leads.csv", "https://localhost:{port}/leads.csv", "https://10.0.0.1/leads.csv"],
)
def test_deployed_rules_fetch_nothing_from_a_private_address(origin: str, blobs: BlobStore, path: str) -> None:
    deployed = RemoteFiles(blobs, allow_private=False, timeout_seconds=5)
    with pytest.raises(FetchError) as err:
        deployed.fetch(path.format(port=origin.rsplit(":", 1)[1]), "uploads/acct_t/job_private.csv", max_bytes=1000)
    assert err.value.code == "fetch_blocked"


@pytest.mark.parametrize("path", ["/trickle.csv", "/slow-headers.csv"])
def test_a_server_that_trickles_is_cut_off_at_the_fetch_deadline(origin: str, blobs: BlobStore, path: str) -> None:
    # Given a fetch capped at 1.5 s in all, and a server that sends something every 0.2 s (never idle for the 30 s a
    # single socket operation may take): its body byte by byte, or its header lines one by one
    fetcher = RemoteFiles(blobs, allow_private=True, timeout_seconds=1.5)
    key = f"uploads/acct_t/job_trickle{path.replace('/', '_')}"
    started = time.monotonic()
    # When it is fetched
    with pytest.raises(FetchError) as err:
        fetcher.fetch(f"{origin}{path}", key, max_bytes=1_000_000)
    elapsed = time.monotonic() - started
    # Then the fetch fails at the deadline (it ran 300 s against a 20 s cap before), and nothing is stored
    assert err.value.code == "fetch_failed" and "longer than 1.5 s" in err.value.message, err.value.message
    assert 1.4 < elapsed < 3.0, elapsed
    assert blobs.head(key) is None


@pytest.mark.parametrize(("path", "code"), [("/to-userinfo", "fetch_blocked"), ("/to-space", "fetch_failed")])
def test_every_redirect_is_checked_like_the_first_url(origin: str, blobs: BlobStore, path: str, code: str) -> None:
    # A redirect to a URL with user info (followed before: only the first URL was checked), or to one that no request
    # line can carry, ends the fetch with a reason instead of a crash
    with pytest.raises(FetchError) as err:
        local(blobs).fetch(f"{origin}{path}", f"uploads/acct_t/job{path.replace('/', '_')}.csv", max_bytes=1000)
    assert err.value.code == code, err.value.message
