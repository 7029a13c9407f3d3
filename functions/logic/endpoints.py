"""Webhook endpoint management: validation, secrets shown once, test sends, delivery history."""

from __future__ import annotations

import secrets
from typing import Any, Protocol

from functions.errors import InputError, NotFoundError
from functions.logic.jobs import utcnow
from functions.logic.webhooks import EVENT_TYPES, Attempt, event_payload, new_secret

# Endpoints one account may register: every job event fans out to each of them (README "Webhooks").
MAX_ENDPOINTS = 50
PUBLIC_FIELDS = ("id", "url", "events", "description", "is_active", "created_at", "updated_at")
TEST_EVENT = "webhook.test"


class TargetPort(Protocol):
    """Webhook URLs: whether one may be used (resolving its name once), and a signed send to it."""

    def check(self, url: str) -> str:
        """The URL as it will be requested (non-ASCII encoded); raise InvalidTargetError when it may not receive
        webhooks."""
        ...

    def send(self, url: str, msg_id: str, payload: str, secret: str) -> Attempt:
        """One signed POST."""
        ...


class EndpointStorePort(Protocol):
    """Endpoint storage."""

    def put_endpoint(self, account_id: str, endpoint: dict[str, Any]) -> None: ...
    def get_endpoint(self, account_id: str, endpoint_id: str) -> dict[str, Any] | None: ...
    def list_endpoints(self, account_id: str) -> list[dict[str, Any]]: ...
    def delete_endpoint(self, account_id: str, endpoint_id: str) -> None: ...
    def deliveries(self, endpoint_id: str, limit: int = 50) -> list[dict[str, Any]]: ...


def _public(endpoint: dict[str, Any], account_id: str) -> dict[str, Any]:
    view = {k: endpoint.get(k) for k in PUBLIC_FIELDS}
    view["workspace_id"] = account_id
    view["description"] = view["description"] or ""
    return view


def _events(value: Any) -> list[str]:
    if value is None:
        return list(EVENT_TYPES)
    if not isinstance(value, list) or not value or not all(isinstance(e, str) for e in value):
        raise InputError(
            "events must be a non-empty list of event types", code="invalid_events", allowed=list(EVENT_TYPES)
        )
    unknown = sorted(set(value) - set(EVENT_TYPES))
    if unknown:
        raise InputError(f"unknown event types: {', '.join(unknown)}", code="invalid_events", allowed=list(EVENT_TYPES))
    return sorted(set(value))


def _url(value: Any, targets: TargetPort) -> str:
    if not isinstance(value, str) or not value:
        raise InputError("url is required", code="invalid_webhook_url")
    # Resolved once now, so a private target (or a URL no request line can carry) is refused here instead of
    # collecting a day of failed retries; stored as it will be requested (`/café` as `/caf%C3%A9`).
    return targets.check(value)


def _owned(store: EndpointStorePort, account_id: str, endpoint_id: str) -> dict[str, Any]:
    endpoint = store.get_endpoint(account_id, endpoint_id) if endpoint_id else None
    if endpoint is None:
        raise NotFoundError(f"no webhook {endpoint_id}", code="webhook_not_found")
    return endpoint


def create_endpoint(
    store: EndpointStorePort,
    account_id: str,
    body: dict[str, Any],
    *,
    targets: TargetPort,
) -> dict[str, Any]:
    """A new endpoint (active, all job events unless `events` says otherwise) with its secret; at most MAX_ENDPOINTS
    per account (400 too_many_webhooks)."""
    if len(store.list_endpoints(account_id)) >= MAX_ENDPOINTS:
        raise InputError(
            f"an account may register at most {MAX_ENDPOINTS} webhook endpoints; delete one first",
            code="too_many_webhooks",
            max_webhooks=MAX_ENDPOINTS,
        )
    now = utcnow()
    endpoint = {
        "id": "wh_" + secrets.token_hex(10),
        "url": _url(body.get("url"), targets),
        "events": _events(body.get("events")),
        "description": str(body.get("description") or ""),
        "is_active": True,
        "secret": new_secret(),
        "created_at": now,
        "updated_at": now,
    }
    store.put_endpoint(account_id, endpoint)
    return {**_public(endpoint, account_id), "secret": endpoint["secret"]}


def update_endpoint(
    store: EndpointStorePort,
    account_id: str,
    body: dict[str, Any],
    *,
    targets: TargetPort,
) -> dict[str, Any]:
    """Change url, events, description, is_active; the secret stays."""
    endpoint = _owned(store, account_id, str(body.get("id") or ""))
    if "url" in body:
        endpoint["url"] = _url(body["url"], targets)
    if "events" in body:
        endpoint["events"] = _events(body["events"])
    if "description" in body:
        endpoint["description"] = str(body["description"] or "")
    if "is_active" in body:
        if not isinstance(body["is_active"], bool):
            raise InputError("is_active must be true or false", code="invalid_body")
        endpoint["is_active"] = body["is_active"]
    endpoint["updated_at"] = utcnow()
    endpoint.pop("pk", None)
    endpoint.pop("sk", None)
    endpoint.pop("owner", None)
    store.put_endpoint(account_id, endpoint)
    return _public(endpoint, account_id)


def list_endpoints(store: EndpointStorePort, account_id: str) -> list[dict[str, Any]]:
    """The account's endpoints without secrets."""
    return [_public(e, account_id) for e in store.list_endpoints(account_id)]


def delete_endpoint(store: EndpointStorePort, account_id: str, endpoint_id: str) -> None:
    """Delete an endpoint of this account (404 for anyone else's)."""
    _owned(store, account_id, endpoint_id)
    store.delete_endpoint(account_id, endpoint_id)


def list_deliveries(store: EndpointStorePort, account_id: str, endpoint_id: str) -> list[dict[str, Any]]:
    """The last 50 deliveries of an endpoint of this account."""
    _owned(store, account_id, endpoint_id)
    return store.deliveries(endpoint_id, 50)


def send_test(store: EndpointStorePort, account_id: str, endpoint_id: str, *, targets: TargetPort) -> dict[str, Any]:
    """Send a signed test event synchronously and report the answer (not retried, not recorded as a job event).

    The answer's status is always reported; its body only from a public receiver (functions/adapters/webhook_http.py).
    """
    endpoint = _owned(store, account_id, endpoint_id)
    now = utcnow()
    msg_id = "msg_test_" + secrets.token_hex(8)
    payload = event_payload(TEST_EVENT, {"webhook_id": endpoint_id, "message": "test event from bulkapi"}, now)
    result = targets.send(endpoint["url"], msg_id, payload, endpoint["secret"])
    return {
        "id": msg_id,
        "webhook_id": endpoint_id,
        "event_type": TEST_EVENT,
        "success": result.delivered,
        "response_status": result.status,
        "response_body": result.body,
        "error": result.error,
    }
