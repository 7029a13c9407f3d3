"""Webhook delivery: Standard Webhooks signature, a stable id per event, private targets refused in AWS."""

from __future__ import annotations

import ipaddress
import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook

from functions.errors import BulkApiError


class DeliveryError(BulkApiError):
    """The endpoint did not accept the event; the platform retries it."""

    code = "webhook_delivery_failed"


@dataclass(frozen=True)
class WebhookTarget:
    """Where an account's events go, and the secret (whsec_...) they are signed with."""

    url: str
    secret: str


def check_target(url: str, allow_private: bool) -> None:
    """Refuse URLs that would reach private, loopback or link-local addresses (SSRF), unless allowed locally."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise DeliveryError(f"not a web URL: {url}", code="invalid_webhook_url")
    if allow_private:
        return
    if parts.scheme != "https":
        raise DeliveryError("webhook URLs must use https", code="invalid_webhook_url")
    for info in socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP):
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise DeliveryError(f"{parts.hostname} resolves to a non-public address", code="invalid_webhook_url")


def deliver(
    target: WebhookTarget, event_type: str, detail: dict[str, Any], *, timeout: float, allow_private: bool
) -> int:
    """POST the signed event; returns the HTTP status, raises DeliveryError for anything but 2xx."""
    check_target(target.url, allow_private)
    msg_id = f"msg_{detail['id']}_{detail['status']}"
    payload = json.dumps({"type": event_type, "timestamp": datetime.now(UTC).isoformat(), "data": detail})
    now = datetime.now(UTC)
    signature = Webhook(target.secret).sign(msg_id, now, payload)
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        target.url,
        data=payload.encode(),
        method="POST",
        headers={
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
            "user-agent": "bulkapi-webhooks/1",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"webhook answered {exc.code}", status=exc.code) from exc
    except (urllib.error.URLError, TimeoutError) as exc:
        raise DeliveryError(f"webhook unreachable: {exc}") from exc
