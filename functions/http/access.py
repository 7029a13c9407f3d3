"""Who is at the door: the public routes, the Bearer key, the authorizer's decision and the account it attached.

Deployed, API Gateway calls the authorizer function (handlers/authorizer.py) with the request's headers and path (a
REQUEST authorizer), caches its answer per `Authorization` header for `CACHE_SECONDS`, and hands the account to the
api and stream functions in the request context. A request without that context (the functions on their own) gets the
same answer from `KeyCheck`. The local gateway runs the same decision (local/gateway_authorizers.py).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from functions.errors import UnauthorizedError

# Routes anyone may call (GET): the health check, the API's documentation, the web console (which asks for a key) and
# `/` (a redirect to the console). Their methods have no authorizer (infra/api.py: API Gateway invokes nothing to let
# them through), the api function asks no key for them, and the OpenAPI document marks them `security: []`.
PUBLIC_ROUTES: tuple[str, ...] = ("/api/health", "/api/docs", "/api/openapi.json", "/console", "/")
# How long API Gateway reuses an answer for the same Authorization header: a revoked key keeps working at most this
# long (plus DynamoDB's eventually consistent read, well under a second).
CACHE_SECONDS = 30
# Where the Lambda Web Adapter puts the event's request context (as JSON) for the stream function, replacing any such
# header the client sent.
REQUEST_CONTEXT_HEADER = "x-amzn-request-context"


class KeyLookup(Protocol):
    """The key store (functions/adapters/accounts.py AccountStore): the port of the authorizer's decision."""

    def account_for_key(self, api_key: str) -> str | None: ...


def is_public(path: str) -> bool:
    """Whether a request path (stage prefix removed) is one of the public routes."""
    return (path.rstrip("/") or "/") in PUBLIC_ROUTES


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A request header whatever its case (API Gateway keeps the client's case)."""
    wanted = name.lower()
    for key, value in (headers or {}).items():
        if key.lower() == wanted:
            return value
    return None


def bearer_key(headers: Mapping[str, str] | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` header (header name in any case), or None."""
    scheme, _, key = (header(headers, "authorization") or "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


# --- the authorizer ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    """Who the request is: an account (allowed, with its usage plan key), the public (a public route), or nobody."""

    account_id: str | None
    public: bool = False

    @property
    def allowed(self) -> bool:
        """Whether API Gateway lets the request through."""
        return self.public or self.account_id is not None

    @property
    def usage_identifier_key(self) -> str | None:
        """The value of the account's API Gateway API key in the usage plan: the account id itself."""
        return self.account_id


def decide(path: str, headers: Mapping[str, str] | None, keys: KeyLookup) -> Decision:
    """Public routes pass; a known, unrevoked key is its account; anything else is no one."""
    if is_public(path):
        return Decision(account_id=None, public=True)
    key = bearer_key(headers)
    return Decision(account_id=keys.account_for_key(key) if key else None)


def account_from_context(request_context: Any) -> str | None:
    """`authorizer.account_id` of a request context, or None (no authorizer context)."""
    authorizer = request_context.get("authorizer") if isinstance(request_context, Mapping) else None
    account_id = authorizer.get("account_id") if isinstance(authorizer, Mapping) else None
    return account_id if isinstance(account_id, str) and account_id else None


def account_from_event(event: Mapping[str, Any]) -> str | None:
    """The authorizer's account of an API Gateway proxy event (the api function)."""
    return account_from_context(event.get("requestContext"))


def account_from_headers(headers: Mapping[str, str]) -> str | None:
    """The authorizer's account from the Web Adapter's `x-amzn-request-context` header (the stream function)."""
    raw = headers.get(REQUEST_CONTEXT_HEADER)
    if not raw:
        return None
    try:
        context = json.loads(raw)
    except ValueError:
        return None
    return account_from_context(context)


# --- the functions' own key check ------------------------------------------------------------------------------------
class KeyCheck:
    """Key -> account, remembered per warm instance for `ttl_seconds`: a revoked key stops within that time."""

    def __init__(self, lookup: Callable[[str], str | None], ttl_seconds: float) -> None:
        self.lookup = lookup
        self.ttl = ttl_seconds
        self._seen: dict[str, tuple[float, str]] = {}

    def account_for(self, headers: Mapping[str, str] | None) -> str:
        """The account of the request's key; 401 when it is missing, unknown or revoked."""
        key = bearer_key(headers)
        if key is None:
            raise UnauthorizedError("send your API key as `Authorization: Bearer <key>`")
        digest = hashlib.sha256(key.encode()).hexdigest()
        now = time.monotonic()
        hit = self._seen.get(digest)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        account_id = self.lookup(key)
        if account_id is None:
            self._seen.pop(digest, None)
            raise UnauthorizedError("the API key is not valid")
        if len(self._seen) > 1000:
            self._seen.clear()
        self._seen[digest] = (now, account_id)
        return account_id
