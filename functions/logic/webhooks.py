"""Webhooks: Standard Webhooks signatures, a stable id per event, retries with backoff, SSRF-safe delivery.

An event for an account fans out to each active endpoint subscribed to it; each (event, endpoint) pair is a
delivery with a fixed `webhook-id`, re-signed at every attempt. The fan-out only records each delivery (`pending`)
and queues its first attempt (`queued`), so an event's fan-out takes the same short time however slow the receivers
are, and a sender that dies between the two leaves a `pending` delivery that the event's redelivery queues again.
A 2xx ends a delivery, a 410 disables the endpoint, anything else is retried on RETRY_SCHEDULE (first retry within
10 s, the last about 24 h after the event).
"""

from __future__ import annotations

import base64
import json
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from functions.errors import InputError

# Seconds to wait before attempt n+1 (n = attempts so far). Sums to about 24 h 20 min.
RETRY_SCHEDULE = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800)
EVENT_TYPES = ("bulk_job.completed", "bulk_job.failed", "bulk_job.cancelled")


class InvalidTargetError(InputError):
    """The URL may not receive webhooks (scheme, or an address that is not public)."""

    code = "invalid_webhook_url"


@dataclass(frozen=True)
class Attempt:
    """The outcome of one delivery attempt."""

    status: int  # 0 when no HTTP answer came back
    body: str
    error: str | None = None

    @property
    def delivered(self) -> bool:
        """2xx."""
        return 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        """410 Gone: the receiver asks us to stop."""
        return self.status == 410


def new_secret() -> str:
    """A signing secret in the Standard Webhooks format (whsec_ + base64 of 32 random bytes)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def message_id(event_id: str, endpoint_id: str) -> str:
    """The `webhook-id`: the same for every retry of one event to one endpoint, so receivers can de-duplicate."""
    return f"msg_{event_id}_{endpoint_id}"


def retry_delay(attempts: int) -> int | None:
    """Seconds until the next attempt after `attempts` failures (with +-10% jitter), None when retries are over."""
    if attempts - 1 >= len(RETRY_SCHEDULE):
        return None
    base = RETRY_SCHEDULE[attempts - 1]
    return max(1, round(base * random.uniform(0.9, 1.1)))


class SenderPort(Protocol):
    """Delivers one signed POST to a webhook URL (never raises for what the receiver does)."""

    def send(self, url: str, msg_id: str, payload: str, secret: str) -> Attempt: ...


def event_payload(event_type: str, data: dict[str, Any], event_time: str) -> str:
    """The JSON body receivers get: {type, timestamp, data}."""
    return json.dumps({"type": event_type, "timestamp": event_time, "data": data}, separators=(",", ":"))


class WebhookStorePort(Protocol):
    """What delivery needs from storage."""

    def active_endpoints(self, account_id: str, event_type: str) -> list[dict[str, Any]]: ...
    def get_endpoint(self, account_id: str, endpoint_id: str) -> dict[str, Any] | None: ...
    def start_delivery(self, delivery: dict[str, Any]) -> bool: ...
    def get_delivery(self, delivery: dict[str, Any]) -> dict[str, Any] | None: ...
    def mark_queued(self, delivery: dict[str, Any]) -> None: ...
    def record_attempt(self, delivery: dict[str, Any], attempt: Attempt, status: str, now: str) -> None: ...
    def disable_endpoint(self, account_id: str, endpoint_id: str, now: str) -> None: ...


class RetryPort(Protocol):
    """Schedules a delivery's next attempt."""

    def schedule(self, delivery: dict[str, Any], delay_seconds: int) -> None: ...


def fan_out(
    account_id: str,
    event_type: str,
    event_id: str,
    data: dict[str, Any],
    event_time: str,
    *,
    store: WebhookStorePort,
    retries: RetryPort,
) -> list[str]:
    """Record one delivery per subscribed endpoint and queue its first attempt; the ids of the deliveries queued.

    Replaying an event is safe: a delivery already queued or attempted is left to its attempts; one still `pending`
    (the sender died after recording it, before queuing it) is queued now.
    """
    queued = []
    for endpoint in store.active_endpoints(account_id, event_type):
        delivery = {
            "id": message_id(event_id, endpoint["id"]),
            "account_id": account_id,
            "webhook_id": endpoint["id"],
            "event_type": event_type,
            "payload": event_payload(event_type, data, event_time),
            "attempts": 0,
            "created_at": event_time,
        }
        if not store.start_delivery(delivery):
            existing = store.get_delivery(delivery)
            if existing is None or existing.get("status") != "pending":
                continue  # the same event arrived twice: this delivery's attempts are under way
        retries.schedule(delivery, 0)
        store.mark_queued(delivery)
        queued.append(delivery["id"])
    return queued


def attempt(delivery: dict[str, Any], *, store: WebhookStorePort, retries: RetryPort, sender: SenderPort) -> str:
    """One attempt of a delivery: record it, then end it, disable the endpoint, or schedule the next one."""
    endpoint = store.get_endpoint(delivery["account_id"], delivery["webhook_id"])
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if endpoint is None or not endpoint.get("is_active", True):
        store.record_attempt(delivery, Attempt(0, "", "endpoint_inactive"), "cancelled", now)
        return "cancelled"
    try:
        result = sender.send(endpoint["url"], delivery["id"], delivery["payload"], endpoint["secret"])
    except Exception as exc:  # the sender should not raise; if it does, the attempt is recorded and retried anyway
        result = Attempt(0, "", f"{type(exc).__name__}: {exc}"[:1024])
    delivery["attempts"] = int(delivery.get("attempts", 0)) + 1
    if result.delivered:
        status = "delivered"
    elif result.gone:
        status = "failed"
        store.disable_endpoint(delivery["account_id"], delivery["webhook_id"], now)
    else:
        delay = retry_delay(delivery["attempts"])
        status = "retrying" if delay is not None else "failed"
        if delay is not None:
            retries.schedule(delivery, delay)
    store.record_attempt(delivery, result, status, now)
    return status
