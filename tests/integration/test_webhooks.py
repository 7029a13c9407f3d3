"""Webhook endpoints and deliveries: Standard Webhooks signatures, retries with one webhook-id, 410 disables."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from functions.adapters.accounts import AccountStore
from local.runtime import LocalRuntime
from tests.helpers import email_csv, wait_for
from tests.integration.test_credits_and_drops import new_account, post


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers from a script and keeps what it got."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"headers": dict(self.headers.items()), "body": body.decode()})
                status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def create_hook(session: Any, url: str, events: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url, "description": "test"}
    if events:
        body["events"] = events
    resp = session.post(f"{session.base}/api/webhooks", json=body, timeout=30)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def test_job_event_is_signed_retried_with_one_id_and_recorded(
    account_store: AccountStore, runtime: LocalRuntime, receiver: Receiver
) -> None:
    # Given an endpoint that fails once with 500, then accepts
    _, session = new_account(account_store, runtime, 1000)
    hook = create_hook(session, receiver.url)
    assert hook["secret"].startswith("whsec_")
    receiver.script = [500]
    # When a job completes
    job_id = post(session, email_csv(20)).json()["id"]
    wait_for(lambda: len(receiver.received) >= 2, timeout=60, what="the retry")
    # Then both attempts carry the same webhook-id, each with a valid Standard Webhooks signature
    first, second = receiver.received[:2]
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
    verifier = Webhook(hook["secret"])
    for attempt in (first, second):
        payload = verifier.verify(attempt["body"], {k.lower(): v for k, v in attempt["headers"].items()})
        assert payload["type"] == "bulk_job.completed"
        assert payload["data"]["id"] == job_id and payload["data"]["processed"] == 20
        assert payload["data"]["download_url"].endswith(f"/api/bulk-jobs/download?id={job_id}")
    # And the delivery shows as delivered after 2 attempts
    deliveries = wait_for(
        lambda: [
            d
            for d in session.get(
                f"{session.base}/api/webhooks/deliveries", params={"webhook_id": hook["id"]}, timeout=30
            ).json()["deliveries"]
            if d["status"] == "delivered"
        ],
        what="delivered",
    )
    assert deliveries[0]["attempts"] == 2 and deliveries[0]["response_status"] == 200


def test_410_disables_the_endpoint(account_store: AccountStore, runtime: LocalRuntime, receiver: Receiver) -> None:
    # Given an endpoint that answers 410 Gone
    _, session = new_account(account_store, runtime, 1000)
    create_hook(session, receiver.url)
    receiver.script = [410]
    # When a job completes
    post(session, email_csv(5))
    # Then the endpoint is disabled after that one attempt
    wait_for(
        lambda: not session.get(f"{session.base}/api/webhooks", timeout=30).json()["webhooks"][0]["is_active"],
        timeout=60,
        what="the endpoint to be disabled",
    )
    assert len(receiver.received) == 1


def test_webhook_crud_is_per_account_and_validated(account_store: AccountStore, runtime: LocalRuntime) -> None:
    _, owner = new_account(account_store, runtime, 10)
    _, stranger = new_account(account_store, runtime, 10)
    # (locally only loopback hosts can be checked: a public name would be resolved, and tests have no DNS)
    hook = create_hook(owner, "http://localhost:9/a", ["bulk_job.failed"])
    # The secret is shown once, never in the list
    listed = owner.get(f"{owner.base}/api/webhooks", timeout=30).json()["webhooks"]
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    # Another account cannot see, change, test or delete it
    assert stranger.get(f"{stranger.base}/api/webhooks", timeout=30).json()["webhooks"] == []
    for method, path, body in (
        ("PUT", "/api/webhooks", {"id": hook["id"], "url": "https://x.example.com"}),
        ("DELETE", "/api/webhooks", {"id": hook["id"]}),
        ("POST", "/api/webhooks/test", {"id": hook["id"]}),
    ):
        resp = stranger.request(method, f"{stranger.base}{path}", json=body, timeout=30)
        assert resp.status_code == 404 and resp.json()["error"] == "webhook_not_found"
    resp = stranger.get(f"{stranger.base}/api/webhooks/deliveries", params={"webhook_id": hook["id"]}, timeout=30)
    assert resp.status_code == 404
    # Bad input is a 400 with a code
    bad = owner.post(
        f"{owner.base}/api/webhooks", json={"url": "ftp://x", "events": ["bulk_job.completed"]}, timeout=30
    )
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_webhook_url"
    bad = owner.post(f"{owner.base}/api/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["nope"]}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_events"
    # The owner can update and delete it
    updated = owner.put(
        f"{owner.base}/api/webhooks",
        json={"id": hook["id"], "url": "http://[::1]:9/b", "is_active": False},
        timeout=30,
    ).json()
    assert (updated["url"], updated["is_active"]) == ("http://[::1]:9/b", False)
    assert owner.delete(f"{owner.base}/api/webhooks", json={"id": hook["id"]}, timeout=30).status_code == 200
    assert owner.get(f"{owner.base}/api/webhooks", timeout=30).json()["webhooks"] == []


def test_encrata_client_webhook_calls_work(
    account_store: AccountStore, runtime: LocalRuntime, receiver: Receiver
) -> None:
    encrata = pytest.importorskip("encrata")
    # Given the official client pointed at the local server
    _, session = new_account(account_store, runtime, 10)
    key = session.headers["Authorization"].split()[1]
    client = encrata.Encrata(key, base_url=runtime.base_url)
    # When it creates, lists, tests a webhook and reads its deliveries
    hook = client.create_webhook(receiver.url, ["bulk_job.completed"], description="from encrata")
    assert hook.id.startswith("wh_") and hook.secret and hook.url == receiver.url
    assert [h.id for h in client.list_webhooks()] == [hook.id]
    result = client.test_webhook(hook.id)
    assert result["success"] is True and result["response_status"] == 200
    sent = json.loads(receiver.received[-1]["body"])
    assert sent["type"] == "webhook.test"
    Webhook(hook.secret).verify(
        receiver.received[-1]["body"], {k.lower(): v for k, v in receiver.received[-1]["headers"].items()}
    )
    # And the official client reads the delivery log, which shows that test (delivered, 200)
    (logged,) = client.list_webhook_deliveries(hook.id)
    assert (logged.id, logged.event_type, logged.status, logged.response_status) == (
        result["id"],
        "webhook.test",
        "delivered",
        200,
    )
    client.update_webhook(hook.id, receiver.url, is_active=False)
    assert client.list_webhooks()[0].is_active is False
    client.delete_webhook(hook.id)
    assert client.list_webhooks() == []
    assert requests.get(f"{runtime.base_url}/api/health", timeout=10).status_code == 200


def test_a_job_that_failed_before_any_row_is_announced_without_a_download(
    account_store: AccountStore, runtime: LocalRuntime, receiver: Receiver
) -> None:
    # Given an endpoint, and an account with 10 credits whose presigned upload brings 20 rows
    _, session = new_account(account_store, runtime, 10)
    create_hook(session, receiver.url)
    job = session.post(f"{session.base}/api/bulk-jobs", json={"type": "email", "filename": "big.csv"}, timeout=30)
    form = job.json()["upload"]
    sent = requests.post(form["url"], data=form["fields"], files={"file": ("big.csv", email_csv(20))}, timeout=60)
    assert sent.status_code == 204, sent.text
    # When the job fails on the balance and the event is delivered
    wait_for(lambda: receiver.received, timeout=60, what="the failure event")
    data = json.loads(receiver.received[0]["body"])["data"]
    # Then the event has no download link (the download answers 409 job_failed: there is no result)
    assert (data["status"], data["error"], data["processed"]) == ("failed", "insufficient_credits", 0)
    assert data["download_url"] is None, data
    status = session.get(f"{session.base}/api/bulk-jobs", params={"id": data["id"]}, timeout=30).json()
    assert (status["result_ready"], status["result_expires_at"], status["variants"]) == (False, None, []), status
    download = session.get(f"{session.base}/api/bulk-jobs/download", params={"id": data["id"]}, timeout=30)
    assert download.status_code == 409 and download.json()["error"] == "job_failed"
