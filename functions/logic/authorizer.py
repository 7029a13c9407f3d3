"""The API's authorizer decision: which account a request's Bearer key belongs to, and which routes are public.

API Gateway calls the authorizer function with the request's headers and path (a REQUEST authorizer) and caches its
answer, keyed on the `Authorization` header, for `CACHE_SECONDS`. The same decision runs locally (local/authorizer.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

# Routes anyone may call: the health check, the API's documentation and the web console (which asks for a key).
# Their methods have no authorizer (infra/api.py: API Gateway invokes nothing to let them through); every other
# method needs a key. The same set as functions/frontdoor.py PUBLIC_PATHS (a test keeps them equal).
PUBLIC_ROUTES: tuple[str, ...] = ("/api/health", "/api/docs", "/api/openapi.json", "/console")
# How long API Gateway reuses an answer for the same Authorization header: a revoked key keeps working at most this
# long (plus DynamoDB's eventually consistent read, well under a second).
CACHE_SECONDS = 30


class KeyLookup(Protocol):
    """The key store (functions/adapters/accounts.py AccountStore)."""

    def account_for_key(self, api_key: str) -> str | None: ...


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


def bearer_key(headers: Mapping[str, str] | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` header (header name in any case), or None."""
    value = next((v for k, v in (headers or {}).items() if k.lower() == "authorization"), None) or ""
    scheme, _, key = value.partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


def is_public(path: str) -> bool:
    """Whether a request path (stage prefix removed) is one of the public routes."""
    return path.rstrip("/") in PUBLIC_ROUTES


def decide(path: str, headers: Mapping[str, str] | None, keys: KeyLookup) -> Decision:
    """Public routes pass; a known, unrevoked key is its account; anything else is no one."""
    if is_public(path):
        return Decision(account_id=None, public=True)
    key = bearer_key(headers)
    return Decision(account_id=keys.account_for_key(key) if key else None)
