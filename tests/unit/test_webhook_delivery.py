"""Webhook deliveries survive crashes and bad URLs: the fan-out records then queues, a replay queues what was only
recorded, every attempt is recorded whatever happens, and URLs are stored as they will be requested."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from functions.adapters.webhook_http import WebhookHttp
from functions.errors import InputError
from functions.logic import endpoints, webhooks
from functions.logic.webhooks import Attempt
from tests.unit.test_webhook_targets import Endpoints, register, targets


class Deliveries:
    """Endpoints and deliveries in memory, as the webhook store keeps them."""

    def __init__(self, endpoint_ids: list[str]) -> None:
        self.endpoints = {
            e: {"id": e, "url": f"https://hooks.example.com/{e}", "secret": "whsec_x", "events": ["bulk_job.completed"]}
            for e in endpoint_ids
        }
        self.deliveries: dict[str, dict[str, Any]] = {}

    def active_endpoints(self, account_id: str, event_type: str) -> list[dict[str, Any]]:
        return list(self.endpoints.values())

    def get_endpoint(self, account_id: str, endpoint_id: str) -> dict[str, Any] | None:
        return self.endpoints.get(endpoint_id)

    def start_delivery(self, delivery: dict[str, Any]) -> bool:
        if delivery["id"] in self.deliveries:
            return False
        self.deliveries[delivery["id"]] = {**delivery, "status": "pending"}
        return True

    def get_delivery(self, delivery: dict[str, Any]) -> dict[str, Any] | None:
        return self.deliveries.get(delivery["id"])

    def mark_queued(self, delivery: dict[str, Any]) -> None:
        if self.deliveries[delivery["id"]]["status"] == "pending":
            self.deliveries[delivery["id"]]["status"] = "queued"

    def record_attempt(self, delivery: dict[str, Any], attempt: Attempt, status: str, now: str) -> None:
        self.deliveries[delivery["id"]].update(status=status, attempts=delivery["attempts"], error=attempt.error)

    def disable_endpoint(self, account_id: str, endpoint_id: str, now: str) -> None:
        self.endpoints[endpoint_id]["is_active"] = False


class Queue:
    """The retry queue; `crashes` first calls die as a killed sender would."""

    def __init__(self, crashes: int = 0) -> None:
        self.crashes = crashes
        self.scheduled: list[tuple[str, int]] = []

    def schedule(self, delivery: dict[str, Any], delay_seconds: int) -> None:
        if self.crashes:
            self.crashes -= 1
            raise RuntimeError("killed")
        self.scheduled.append((delivery["id"], delay_seconds))


def fan_out(store: Deliveries, queue: Queue) -> list[str]:
    return webhooks.fan_out(
        "acct_a",
        "bulk_job.completed",
        "job_1_completed",
        {"id": "job_1"},
        "2026-01-01T00:00:00Z",
        store=store,
        retries=queue,
    )


def test_a_fan_out_records_each_delivery_and_queues_its_first_attempt_without_sending() -> None:
    # Given 50 endpoints (the most an account may have)
    store, queue = Deliveries([f"wh_{i}" for i in range(50)]), Queue()
    # When an event fans out
    queued = fan_out(store, queue)
    # Then each delivery is recorded and its first attempt queued at once: no receiver is waited for here
    assert len(queued) == 50 and queue.scheduled == [(d, 0) for d in queued]
    assert {d["status"] for d in store.deliveries.values()} == {"queued"}


def test_a_sender_killed_between_recording_and_queuing_loses_nothing_on_the_events_redelivery() -> None:
    # Given a sender that dies after recording the first delivery, before queuing it
    store, queue = Deliveries(["wh_a", "wh_b"]), Queue(crashes=1)
    with pytest.raises(RuntimeError):
        fan_out(store, queue)
    assert [d["status"] for d in store.deliveries.values()] == ["pending"]
    # When the event comes again (EventBridge retries a failed invocation)
    queued = fan_out(store, queue)
    # Then the pending delivery is queued now (it was skipped as existing before, and stayed pending forever), and so
    # is the one never recorded
    assert sorted(queued) == ["msg_job_1_completed_wh_a", "msg_job_1_completed_wh_b"]
    assert {d["status"] for d in store.deliveries.values()} == {"queued"}
    # And a third arrival of the event queues nothing again
    assert fan_out(store, queue) == [] and len(queue.scheduled) == 2


class Raising:
    def send(self, url: str, msg_id: str, payload: str, secret: str) -> Attempt:
        raise UnicodeEncodeError("ascii", "café", 3, 4, "ordinal not in range(128)")


def test_an_attempt_whose_sender_raises_is_recorded_and_retried() -> None:
    store, queue = Deliveries(["wh_a"]), Queue()
    [delivery_id] = fan_out(store, queue)
    delivery = dict(store.deliveries[delivery_id])
    status = webhooks.attempt(delivery, store=store, retries=queue, sender=Raising())
    assert status == "retrying" and store.deliveries[delivery_id]["attempts"] == 1
    assert "UnicodeEncodeError" in store.deliveries[delivery_id]["error"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8391/café", "http://127.0.0.1:8391/caf%C3%A9"),
        ("http://localhost:8391/hooks?tag=grüße", "http://localhost:8391/hooks?tag=gr%C3%BC%C3%9Fe"),
    ],
)
def test_a_non_ascii_url_is_stored_percent_encoded(url: str, expected: str) -> None:
    # (A /café URL was accepted as written, then every send raised UnicodeEncodeError: a 500 on test, and
    # deliveries left pending with 0 attempts)
    assert register(url, allow_private=True)["url"] == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8391/my hooks",
        "http://127.0.0.1:8391/<script>",
        "http://127.0.0.1:8391/a\r\nX-Injected: 1",
        "http://user:secret@127.0.0.1:8391/hooks",
    ],
)
def test_a_url_no_request_line_can_carry_is_refused_when_registered(url: str) -> None:
    # (accepted with 201 before, then retried for 24 h)
    with pytest.raises(InputError) as caught:
        register(url, allow_private=True)
    assert (caught.value.code, caught.value.status_code) == ("invalid_webhook_url", 400)


def test_a_url_stored_before_these_rules_is_sent_encoded_never_raising() -> None:
    # Given a receiver, and an endpoint URL stored as written before URLs were encoded at registration
    paths: list[str] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            paths.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/café"
        # When a delivery is sent to it (it raised UnicodeEncodeError before, outside the errors the sender caught)
        attempt = WebhookHttp(allow_private=True, timeout=5).send(url, "msg_x", "{}", "whsec_eA==")
    finally:
        httpd.shutdown()
        httpd.server_close()
    # Then it arrives, at the path percent-encoded
    assert attempt.delivered and paths == ["/caf%C3%A9"]


def test_an_account_may_register_at_most_the_documented_number_of_endpoints() -> None:
    store = Endpoints()
    for i in range(endpoints.MAX_ENDPOINTS):
        endpoints.create_endpoint(store, "acct_a", {"url": f"http://localhost:9/{i}"}, targets=targets(True))
    with pytest.raises(InputError) as caught:
        endpoints.create_endpoint(store, "acct_a", {"url": "http://localhost:9/one-more"}, targets=targets(True))
    assert (caught.value.code, caught.value.status_code) == ("too_many_webhooks", 400)
    assert caught.value.details["max_webhooks"] == endpoints.MAX_ENDPOINTS == 50
    assert len(store.items) == 50
