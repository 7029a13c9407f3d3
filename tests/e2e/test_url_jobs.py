"""Jobs from a URL on `bulkapi serve`, against slow file servers on loopback: timed from their fetch, shared out per
account, cut off at the fetch deadline however the server spaces its bytes, and refused when the API is not on
loopback. The deployed windows are scaled down (the settings below); the rules are the deployed ones."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.e2e.conftest import Server, new_account, start_server, status, stop_server, wait_ended
from tests.helpers import email_csv, wait_for

pytestmark = pytest.mark.e2e

# Scaled: the sweeper's old window (15 minutes from creation) is START_AFTER seconds; a fetch may take FETCH_TIMEOUT.
START_AFTER = 3
FETCH_TIMEOUT = 15
BURST_DOWNLOAD = START_AFTER + 0.5
# Under the fetch deadline (FETCH_TIMEOUT). The other account once waited past it because the local fetcher had
# one process, so a slow URL held every fetch (local/lambdas.py GROWING_POOLS).
SLOW_DOWNLOAD = 10.0


class Files(BaseHTTPRequestHandler):
    """Files that arrive slowly (`/slow/<name>?seconds=&rows=`), never end (`/trickle/...`) or never start
    (`/slow-headers/...`); each request's start and end go into the server's `log`."""

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        log: dict[str, tuple[float, float | None]] = self.server.log  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        log[self.path] = (time.monotonic(), None)
        kind = parts.path.split("/")[1]
        try:
            if kind == "slow":
                self._slow(float(query.get("seconds", "0")), int(query.get("rows", "20")))
            elif kind == "trickle":
                self._trickle()
            elif kind == "slow-headers":
                self._slow_headers()
            else:
                self.send_error(404)
        except OSError:
            pass  # the fetcher gave up and closed the connection
        log[self.path] = (log[self.path][0], time.monotonic())

    def _slow(self, seconds: float, rows: int) -> None:
        # A well-formed file (Content-Length) whose body takes `seconds` to arrive, in 10 pieces.
        body = email_csv(rows)
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        step = -(-len(body) // 10)
        for i in range(0, len(body), step):
            time.sleep(seconds / 10)
            self.wfile.write(body[i : i + step])
            self.wfile.flush()

    def _trickle(self) -> None:
        # Headers at once, then a byte every 0.5 s with no Content-Length: never idle, never done.
        self.send_response(200)
        self.end_headers()
        for _ in range(240):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.5)

    def _slow_headers(self) -> None:
        # The status line, then a header line every 0.5 s: the response never starts.
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for i in range(240):
            self.wfile.write(b"X-Pad-%d: y\r\n" % i)
            self.wfile.flush()
            time.sleep(0.5)


class Origin:
    """A loopback file server that can be slow in every way, and remembers when each request came and ended."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Files)
        self.server.daemon_threads = True
        self.log: dict[str, tuple[float, float | None]] = {}
        self.server.log = self.log  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def took(self, path: str) -> float:
        """How long the request for `path` ran (it must have ended)."""
        start, end = self.log[path]
        assert end is not None, path
        return end - start


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    files = Origin()
    yield files
    files.server.shutdown()


@pytest.fixture(scope="module")
def url_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The deployed fetch rules with the windows scaled: the sweeper runs every 0.5 s, a queued job is failed
    `not_started` after START_AFTER s (the window URL jobs were timed with), a fetch may take FETCH_TIMEOUT s, a fetch
    whose account holds its 2 slots asks again after 1 s."""
    srv = start_server(
        tmp_path_factory.mktemp("url-jobs"),
        BULKAPI_START_AFTER_SECONDS=str(START_AFTER),
        BULKAPI_FETCH_TIMEOUT_SECONDS=str(FETCH_TIMEOUT),
        BULKAPI_FETCH_SLOT_WAIT_SECONDS="1",
        BULKAPI_LOCAL_SCHEDULE_SECONDS="0.5",
    )
    yield srv
    stop_server(srv)


def create(session: requests.Session, server: Server, url: str) -> str:
    resp = session.post(f"{server.base_url}/api/bulk-jobs", json={"type": "email", "url": url}, timeout=30)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


@pytest.mark.slow
def test_a_burst_of_url_jobs_whose_downloads_outlast_the_old_window_all_complete(
    url_server: Server, origin: Origin
) -> None:
    # Given 20 URL jobs of one account at once, each file taking longer to download than the sweeper's old window
    # (which failed a URL job that long after its creation; the account's 2 fetch slots make the last one wait ~10x)
    account = new_account(url_server, 10_000)
    session = url_server.session(account.key)
    paths = [f"/slow/burst-{i}.csv?seconds={BURST_DOWNLOAD}&rows=20" for i in range(20)]
    jobs = [create(session, url_server, origin.url + path) for path in paths]
    # When they have ended
    finals = [wait_ended(session, url_server, job, timeout=240, interval=0.5) for job in jobs]
    # Then every one completed with its rows (none failed fetch_failed or not_started mid-download)
    assert [(f["status"], f["error"], f["total_rows"]) for f in finals] == [("completed", None, 20)] * 20
    # And each download did outlast the old window, and the burst as a whole took many times that
    assert min(origin.took(path) for path in paths) > START_AFTER
    assert max(origin.log[p][1] or 0 for p in paths) - min(origin.log[p][0] for p in paths) > 5 * START_AFTER
    account.assert_balanced()


def test_one_accounts_slow_urls_do_not_delay_another_accounts_url_job(url_server: Server, origin: Origin) -> None:
    # Given one account fetching five files that each take SLOW_DOWNLOAD seconds (more than the local runtime's 4
    # fetches at once would leave for anyone else without a per-account share)
    slow, other = new_account(url_server, 10_000), new_account(url_server, 10_000)
    slow_paths = [f"/slow/hog-{i}.csv?seconds={SLOW_DOWNLOAD}&rows=10" for i in range(5)]
    slow_session = url_server.session(slow.key)
    slow_jobs = [create(slow_session, url_server, origin.url + p) for p in slow_paths]
    wait_for(lambda: sum(p in origin.log for p in slow_paths) >= 2, timeout=30, what="the slow fetches to start")
    # When another account creates a URL job
    path = "/slow/other.csv?seconds=0&rows=10"
    session = url_server.session(other.key)
    job = create(session, url_server, origin.url + path)
    # Then its file is requested before any of the slow downloads has ended, and the job completes
    wait_for(lambda: path in origin.log, timeout=SLOW_DOWNLOAD, interval=0.05, what="the other account's fetch")
    ended = [origin.log[p][1] for p in slow_paths if p in origin.log and origin.log[p][1] is not None]
    assert not ended or origin.log[path][0] < min(e for e in ended if e is not None)
    assert wait_ended(session, url_server, job, timeout=60)["status"] == "completed"
    # And the slow account's jobs complete too, at most two fetched at a time
    assert [wait_ended(slow_session, url_server, j, timeout=200)["status"] for j in slow_jobs] == ["completed"] * 5
    spans = sorted((origin.log[p][0], origin.log[p][1] or 0.0) for p in slow_paths)
    assert max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans) <= 2


@pytest.mark.parametrize("path", ["/trickle/body.csv", "/slow-headers/head.csv"])
def test_a_trickling_server_ends_fetch_failed_at_the_deadline(url_server: Server, origin: Origin, path: str) -> None:
    # Given a server that sends something every 0.5 s and never finishes: its body byte by byte, or header lines
    session = url_server.session()
    started = time.monotonic()
    # When a job is created from its URL
    job = create(session, url_server, origin.url + path)
    # Then the fetch is cut off at its deadline (it ran 300 s against a 20 s cap before) and the job fails
    # (the server would trickle for 300 s: ending soon after the deadline is the point; the margin is for a loaded
    # machine, where CI once took 57 s from create to failed)
    final = wait_ended(session, url_server, job, timeout=FETCH_TIMEOUT + 90)
    assert (final["status"], final["error"], final["credits_reserved"]) == ("failed", "fetch_failed", 0), final
    assert f"longer than {FETCH_TIMEOUT} s" in final["error_message"]
    assert FETCH_TIMEOUT <= time.monotonic() - started < FETCH_TIMEOUT + 75
    wait_for(lambda: origin.log[path][1] is not None, timeout=5, what="the server to see the connection closed")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/leads.csv\r\nX-Injected: 1",
        "http://user:secret@127.0.0.1:9/leads.csv",
        "http://127.0.0.1:9/my leads.csv",
    ],
)
def test_a_url_that_cannot_be_fetched_is_refused_at_create(url_server: Server, url: str) -> None:
    # A URL with CR/LF (accepted before, then the fetch crashed and was retried), user info or a space
    resp = url_server.session().post(
        f"{url_server.base_url}/api/bulk-jobs", json={"type": "email", "url": url}, timeout=30
    )
    assert resp.status_code == 400, resp.text
    assert (resp.json()["error"], resp.json()["parameter"]) == ("invalid_parameter", "url")


@pytest.fixture(scope="module")
def public_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`bulkapi serve --host 0.0.0.0`: reachable from other machines."""
    srv = start_server(tmp_path_factory.mktemp("public"), host="0.0.0.0")
    yield srv
    stop_server(srv)


def test_an_api_listening_beyond_loopback_fetches_and_calls_no_private_target(
    public_server: Server, origin: Origin
) -> None:
    # Given `bulkapi serve --host 0.0.0.0`, which says at start that private targets are off
    assert public_server.log_path is not None
    banner = public_server.log_path.read_text()
    assert "private URLs:  off: the API listens on 0.0.0.0" in banner, banner
    session = public_server.session()
    port = origin.url.rsplit(":", 1)[1]
    # When a caller asks for a file on this machine: plain http to loopback is refused at once
    refused = session.post(
        f"{public_server.base_url}/api/bulk-jobs",
        json={"type": "email", "url": f"{origin.url}/slow/x.csv"},
        timeout=30,
    )
    assert refused.status_code == 400 and refused.json()["parameter"] == "url", refused.text
    # And an https URL to a name of this machine ends fetch_blocked, without a request reaching the local server
    job = create(session, public_server, f"https://localhost:{port}/slow/private.csv")
    final = wait_for(
        lambda: (s := status(session, public_server, job))["status"] == "failed" and s, timeout=60, what="refusal"
    )
    assert final["error"] == "fetch_blocked" and "/slow/private.csv" not in origin.log
    # And a webhook to loopback is refused too
    hook = session.post(
        f"{public_server.base_url}/api/webhooks", json={"url": f"http://127.0.0.1:{port}/hook"}, timeout=30
    )
    assert hook.status_code == 400 and hook.json()["error"] == "invalid_webhook_url", hook.text
