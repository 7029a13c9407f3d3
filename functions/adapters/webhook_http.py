"""Webhook HTTP: the one place that checks a target URL (resolving its name once) and sends a signed POST to it.

Connections go to exactly the address that was checked (functions/netguard.py), redirects are not followed, and a
receiver's answer is kept (1 KB) only from a public address.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook

from functions.logic.urls import UrlError, clean_url
from functions.logic.webhooks import Attempt, InvalidTargetError
from functions.netguard import (
    LOOPBACK_HOSTS,
    BlockedTargetError,
    PinnedHTTPConnection,
    PinnedHTTPSConnection,
    is_public,
    resolve_webhook_target,
)

# Checks a webhook host and resolves it once: (host, port, allow_loopback) -> the address to connect to.
Resolver = Callable[[str, int, bool], str]
MAX_STORED_BODY = 1024
MAX_READ_BODY = 64 * 1024


def check_url(url: str, allow_private: bool) -> str:
    """The URL as it will be requested (non-ASCII percent-encoded, functions/logic/urls.py); refuse what cannot be an
    HTTPS endpoint: whitespace, control or excluded characters, user info, http except to a loopback host locally."""
    try:
        url = clean_url(url, schemes=("https", "http"))
    except UrlError as exc:
        raise InvalidTargetError(f"the webhook URL cannot be used: {exc}") from exc
    parts = urlsplit(url)
    if parts.scheme != "https" and not (allow_private and parts.hostname in LOOPBACK_HOSTS):
        raise InvalidTargetError("webhook URLs must use https (locally, http to localhost is allowed)")
    return url


def check_target(url: str, allow_private: bool, resolve: Resolver = resolve_webhook_target) -> tuple[str, str]:
    """Check the URL and its host, resolving the name once: the URL as requested, and the address to send to.
    Raises InvalidTargetError.

    Deployed: only public addresses. Locally (allow_private): also `localhost`, `127.0.0.1` and `[::1]` as written.
    """
    url = check_url(url, allow_private)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        return url, resolve(parts.hostname or "", port, allow_private)
    except BlockedTargetError as exc:
        raise InvalidTargetError(f"the webhook URL may not be used: {exc}") from exc
    except OSError as exc:
        raise InvalidTargetError(f"the webhook host {parts.hostname} does not resolve ({exc})") from exc


def send(
    url: str,
    msg_id: str,
    payload: str,
    secret: str,
    *,
    timeout: float,
    allow_private: bool,
    resolve: Resolver = resolve_webhook_target,
) -> Attempt:
    """One signed POST within `timeout` in all (connect, request, answer); never raises: whatever goes wrong, the
    receiver's answer or our own failure (a URL stored before it was checked, a name that no longer resolves, a bug)
    is the Attempt, recorded and retried like any failed delivery.

    The answer's body is kept only from a public address: a loopback port may be another local service (the AWS
    emulation answered a test with its bucket list), and its text is not the caller's to read.
    """
    try:
        return _send(url, msg_id, payload, secret, timeout=timeout, allow_private=allow_private, resolve=resolve)
    except InvalidTargetError as exc:
        return Attempt(0, "", f"invalid_target: {exc}"[:MAX_STORED_BODY])
    except Exception as exc:  # the attempt is recorded whatever happened; a raise would lose it
        return Attempt(0, "", f"{type(exc).__name__}: {exc}"[:MAX_STORED_BODY])


def _send(
    url: str, msg_id: str, payload: str, secret: str, *, timeout: float, allow_private: bool, resolve: Resolver
) -> Attempt:
    deadline = time.monotonic() + timeout
    url, address = check_target(url, allow_private, resolve)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    now = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "user-agent": "bulkapi-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, payload),
    }
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = PinnedHTTPSConnection(parts.hostname or "", address, port, timeout, deadline=deadline)
    else:
        conn = PinnedHTTPConnection(parts.hostname or "", address, port, timeout, deadline=deadline)
    try:
        conn.request("POST", path, body=payload.encode(), headers=headers)
        response = conn.getresponse()
        body = response.read(MAX_READ_BODY).decode("utf-8", errors="replace")
        return Attempt(response.status, body[:MAX_STORED_BODY] if is_public(address) else "")
    except (OSError, http.client.HTTPException) as exc:
        return Attempt(0, "", f"{type(exc).__name__}: {exc}"[:MAX_STORED_BODY])
    finally:
        conn.close()


class WebhookHttp:
    """Targets and sends for one deployment's rules (`allow_private`: the local runtime's loopback targets)."""

    def __init__(
        self, *, allow_private: bool, timeout: float = 10.0, resolve: Resolver = resolve_webhook_target
    ) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self.resolve = resolve

    def check(self, url: str) -> str:
        """The URL as it will be requested; refuse one that may not receive webhooks (InvalidTargetError), resolving
        its name once."""
        return check_target(url, self.allow_private, self.resolve)[0]

    def send(self, url: str, msg_id: str, payload: str, secret: str) -> Attempt:
        """One signed POST (see `send`)."""
        return send(
            url, msg_id, payload, secret, timeout=self.timeout, allow_private=self.allow_private, resolve=self.resolve
        )
