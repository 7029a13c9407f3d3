"""Webhook deliveries on `bulkapi serve` survive a sender killed mid-fan-out and URLs a request line cannot carry."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.e2e.conftest import Server, new_account, post_job, start_server, stop_server, wait_ended
from tests.helpers import email_csv, wait_for

pytestmark = pytest.mark.e2e


class Receiver(BaseHTTPRequestHandler):
    """Answers 200 and keeps each request (path, headers, body) in the server's `received`."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.server.received.append(  # type: ignore[attr-defined]
            {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
        )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture()
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    httpd.daemon_threads = True
    received: list[dict[str, Any]] = []
    httpd.received = received  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def crashing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Every delivery's fan-out dies once, after the delivery is recorded and before its attempt is queued."""
    srv = start_server(tmp_path_factory.mktemp("webhook-faults"), BULKAPI_LOCAL_CRASH_AFTER_RECORD="true")
    yield srv
    stop_server(srv)


def deliveries(server: Server, session: Any, hook_id: str) -> list[dict[str, Any]]:
    resp = session.get(f"{server.base_url}/api/webhooks/deliveries", params={"webhook_id": hook_id}, timeout=30)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["deliveries"])


def test_a_sender_killed_between_recording_and_sending_a_delivery_still_delivers_it(
    crashing_server: Server, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    # Given an endpoint
    url, received = receiver
    account = new_account(crashing_server, 1_000)
    session = crashing_server.session(account.key)
    hook = session.post(f"{crashing_server.base_url}/api/webhooks", json={"url": f"{url}/hooks"}, timeout=30).json()
    # When a job ends and the sender dies right after recording its delivery (the delivery stayed pending forever:
    # the event's redelivery skipped a delivery that existed)
    job_id = post_job(session, crashing_server, email_csv(5)).json()["id"]
    assert wait_ended(session, crashing_server, job_id, timeout=60)["status"] == "completed"
    # Then the delivery still arrives, signed, once the event comes again
    wait_for(lambda: received, timeout=60, what="the delivery")
    payload = Webhook(hook["secret"]).verify(received[0]["body"], received[0]["headers"])
    assert (payload["type"], payload["data"]["id"]) == ("bulk_job.completed", job_id)
    delivered = wait_for(
        lambda: [d for d in deliveries(crashing_server, session, hook["id"]) if d["status"] == "delivered"],
        timeout=30,
        what="the delivery to be recorded delivered",
    )
    assert delivered[0]["id"] == received[0]["headers"]["webhook-id"] and delivered[0]["attempts"] == 1
    # And the sender did die there for this delivery (the test hook's log line)
    assert crashing_server.log_path is not None
    assert f"sender killed after recording {delivered[0]['id']}" in crashing_server.log_path.read_text()


def test_a_non_ascii_webhook_url_is_encoded_tested_and_delivered_never_a_500_or_pending(
    crashing_server: Server, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    account = new_account(crashing_server, 1_000)
    session = crashing_server.session(account.key)
    # Given an endpoint registered at a URL with a non-ASCII path (stored as written before)
    created = session.post(f"{crashing_server.base_url}/api/webhooks", json={"url": f"{url}/café"}, timeout=30)
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["url"] == f"{url}/caf%C3%A9"
    # When it is tested (500 UnicodeEncodeError before)
    test = session.post(f"{crashing_server.base_url}/api/webhooks/test", json={"id": hook["id"]}, timeout=30)
    assert test.status_code == 200 and test.json()["success"] is True, test.text
    # And a job event is delivered to it (the fan-out crashed before, leaving the delivery pending with 0 attempts)
    job_id = post_job(session, crashing_server, email_csv(3)).json()["id"]
    wait_for(lambda: any(json.loads(r["body"])["type"] == "bulk_job.completed" for r in received), timeout=60)
    assert {r["path"] for r in received} == {"/caf%C3%A9"}
    assert wait_for(
        lambda: [d for d in deliveries(crashing_server, session, hook["id"]) if d["status"] == "delivered"],
        timeout=30,
        what=f"job {job_id}'s delivery recorded delivered",
    )
    # And URLs with a space or `<` are refused with a code (accepted before, then retried for 24 h)
    for bad in (f"{url}/my hooks", f"{url}/<x>"):
        refused = session.post(f"{crashing_server.base_url}/api/webhooks", json={"url": bad}, timeout=30)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_webhook_url", refused.text


def test_an_account_has_at_most_50_endpoints(crashing_server: Server) -> None:
    account = new_account(crashing_server, 10)
    session = crashing_server.session(account.key)
    for i in range(50):
        made = session.post(
            f"{crashing_server.base_url}/api/webhooks", json={"url": f"http://localhost:9/{i}"}, timeout=30
        )
        assert made.status_code == 201, made.text
    refused = session.post(
        f"{crashing_server.base_url}/api/webhooks", json={"url": "http://localhost:9/51"}, timeout=30
    )
    assert refused.status_code == 400, refused.text
    assert (refused.json()["error"], refused.json()["max_webhooks"]) == ("too_many_webhooks", 50)
