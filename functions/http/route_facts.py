"""What a REST route declares beside its path, where it is defined: the error codes it answers, the kind of its body,
its success status and what the OpenAPI document shows of its body.

    @router.post("/api/webhooks", summary="Register a webhook endpoint", tags=["webhooks"])
    @declares(body="json", errors=("invalid_webhook_url", ...), success=201, example={...})
    def create_webhook(body: WebhookCreateRequest) -> Response[WebhookCreatedResponse]: ...

The contract (http/contract.py) documents these facts; the api function refuses a JSON route's body that is not JSON
text before its resolver runs (`refuse_unreadable_body`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from functions.errors import BulkApiError, InputError, UnsupportedMediaTypeError
from functions.http.access import header

F = TypeVar("F", bound=Callable[..., Any])

# Codes every keyed route can answer: the key, the gateway's per-account limits, a method it does not take, a query
# parameter it does not take, our faults. A public route answers the same but the key's and the limits'.
KEYED_CODES = (
    "unknown_parameter",
    "unauthorized",
    "account_not_enabled",
    "rate_limited",
    "quota_exceeded",
    "method_not_allowed",
    "internal_error",
    "storage_unavailable",
)
PUBLIC_CODES = ("unknown_parameter", "method_not_allowed", "internal_error")
# A route with a body: one over the gateway's payload limit is refused before the function runs.
BODY_CODES = ("request_too_large",)
# What a route with a JSON body answers besides its own codes.
JSON_BODY_CODES = (*BODY_CODES, "invalid_body", "missing_parameter", "invalid_parameter", "unsupported_media_type")
IDEMPOTENCY_CODES = ("invalid_idempotency_key", "idempotency_in_progress", "idempotency_key_reused")


@dataclass(frozen=True)
class RouteFacts:
    """A route's declared facts (`declares`)."""

    # The codes it answers besides those of every route (KEYED_CODES, PUBLIC_CODES) and of its body kind.
    errors: tuple[str, ...] = ()
    # json: parsed by the resolver, refused before it unless JSON text; form: parsed by the route itself.
    body: Literal["json", "form"] | None = None
    success: int = 200
    # Another success answer with the success's body, and its description.
    also: Mapping[int, str] = field(default_factory=dict)
    # What the document shows as the request body (in place of the generated one), or as its JSON example.
    request_body: Mapping[str, Any] | None = None
    example: Mapping[str, Any] | None = None

    @property
    def codes(self) -> tuple[str, ...]:
        """Its own codes and its body kind's."""
        return (*self.errors, *(JSON_BODY_CODES if self.body == "json" else ()))


NO_FACTS = RouteFacts()


def declares(
    *,
    errors: tuple[str, ...] = (),
    body: Literal["json", "form"] | None = None,
    success: int = 200,
    also: Mapping[int, str] | None = None,
    request_body: Mapping[str, Any] | None = None,
    example: Mapping[str, Any] | None = None,
) -> Callable[[F], F]:
    """Declare a route's facts on its function (put it under the route's decorator)."""
    facts = RouteFacts(errors, body, success, also or {}, request_body, example)

    def declare(func: F) -> F:
        func.route_facts = facts  # type: ignore[attr-defined]
        return func

    return declare


def facts_of(func: Callable[..., Any]) -> RouteFacts:
    """The facts a route's function declared (none: NO_FACTS)."""
    facts = getattr(func, "route_facts", NO_FACTS)
    return facts if isinstance(facts, RouteFacts) else NO_FACTS


def json_body_routes(routes: Iterable[Any]) -> frozenset[tuple[str, str]]:
    """(METHOD, path) of the resolver's routes whose body is JSON."""
    return frozenset((r.method.upper(), r.path) for r in routes if facts_of(r.func).body == "json")


def refuse_unreadable_body(event: Mapping[str, Any], json_routes: frozenset[tuple[str, str]]) -> BulkApiError | None:
    """A JSON route's body that is not JSON text: 415 for another media type, 400 for bytes that are not UTF-8.

    Checked before the resolver, whose validation would otherwise fail inside its own parsing.
    """
    route = (str(event.get("httpMethod") or ""), str(event.get("path") or "").rstrip("/"))
    if route not in json_routes or not event.get("body"):
        return None
    media_type = (header(event.get("headers"), "content-type") or "application/json").split(";")[0]
    if media_type.strip().lower() != "application/json":
        return UnsupportedMediaTypeError(
            "send the body as JSON with `Content-Type: application/json`", code="unsupported_media_type"
        )
    raw = str(event["body"])
    try:
        (base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()).decode("utf-8")
    except (ValueError, UnicodeError):
        return InputError("the body must be JSON text in UTF-8", code="invalid_body")
    return None
