"""The local API under concurrency: no connection is reset, and no request waits for another."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Server, new_account

pytestmark = pytest.mark.e2e


def lookup(server: Server, key: str, n: int) -> tuple[int, bytes]:
    """One inline lookup of 100 addresses, read to the end on its own connection."""
    resp = requests.post(
        f"{server.base_url}/api/bulk-lookup",
        json={"emails": [f"user{i}.{n}@example.com" for i in range(100)]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    )
    return resp.status_code, resp.content


def test_fifty_concurrent_inline_requests_are_all_answered(server: Server) -> None:
    # Given an account with credits for 50 lookups of 100 addresses
    account = new_account(server, 5_000)

    # When 50 clients send theirs at the same moment (the http.server gateway's backlog of 5 reset 2 to 13)
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda n: lookup(server, account.key, n), range(50)))

    # Then every one is answered in full, and charged once
    assert [status for status, _ in answers] == [200] * 50
    assert all(body.rstrip().endswith(b"data: [DONE]") for _, body in answers)
    # (exact only once the emulation applies concurrent UpdateItems atomically: issue 13's first part)
    assert account.balance == 0, f"{account.balance} credits left: a charge was lost"


@pytest.fixture()
def slow_receiver() -> Iterator[str]:
    """A webhook endpoint that takes 5 s to answer."""

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(5)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://localhost:{httpd.server_address[1]}/hook"
    httpd.shutdown()
    httpd.server_close()


def test_a_slow_webhook_test_does_not_hold_up_other_requests(server: Server, slow_receiver: str) -> None:
    # Given a webhook whose endpoint takes 5 s to answer
    session = server.session()
    hook = session.post(f"{server.base_url}/api/webhooks", json={"url": slow_receiver}, timeout=30)
    assert hook.status_code == 201, hook.text
    with ThreadPoolExecutor(2) as pool:
        # When its test call is under way
        testing = pool.submit(
            session.post, f"{server.base_url}/api/webhooks/test", json={"id": hook.json()["id"]}, timeout=30
        )
        time.sleep(0.5)  # let the test call reach the receiver first; the checks below do not depend on it
        # Then health, a job list and the credits answer at once (health took 9.5 s behind the gateway's lock)
        for path in ("/api/health", "/api/bulk-jobs", "/api/credits"):
            started = time.monotonic()
            assert session.get(f"{server.base_url}{path}", timeout=30).status_code == 200
            assert time.monotonic() - started < 2, path
        assert not testing.done()
        assert testing.result().status_code == 200


def test_concurrent_requests_of_two_accounts_each_get_their_own_answer(server: Server) -> None:
    # Given two accounts with one job each
    accounts = [new_account(server, 100) for _ in range(2)]
    jobs = []
    for account in accounts:
        created = server.session(account.key).post(
            f"{server.base_url}/api/bulk-jobs",
            files={"file": ("a.csv", b"email\na@example.com\n", "text/csv")},
            data={"type": "email"},
            timeout=30,
        )
        assert created.status_code == 202, created.text
        jobs.append(created.json()["id"])

    # When both ask for their job by id and for their job list, many times at once (requests run side by side)
    def ask(n: int) -> tuple[int, bool, Any]:
        owner, by_id = n % 2, n % 3 == 0
        session = server.session(accounts[owner].key)
        params = {"id": jobs[owner]} if by_id else {}
        resp = session.get(f"{server.base_url}/api/bulk-jobs", params=params, timeout=30)
        body = resp.json()
        return owner, by_id, body.get("id") if by_id else [job["id"] for job in body.get("jobs", [])]

    with ThreadPoolExecutor(20) as pool:
        seen = list(pool.map(ask, range(120)))

    # Then each answer is the one asked for, of its own account (a shared resolver once swapped requests)
    wrong = [(owner, by_id, got) for owner, by_id, got in seen if got != (jobs[owner] if by_id else [jobs[owner]])]
    assert wrong == []
