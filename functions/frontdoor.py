"""What the REST function and the stream function share at the door, in one place: the key check, the error body,
the request id every answer carries, and the CORS headers.

Both front ends call these; neither rewrites them.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from functions import cors
from functions.errors import BulkApiError, UnauthorizedError

REQUEST_ID_HEADER = "X-Request-Id"
# Routes that answer without a key.
# `/` only redirects to the console.
PUBLIC_PATHS = frozenset({"/api/health", "/api/openapi.json", "/api/docs", "/console", "/"})


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A request header whatever its case (API Gateway keeps the client's case)."""
    wanted = name.lower()
    for key, value in (headers or {}).items():
        if key.lower() == wanted:
            return value
    return None


# --- request ids ----------------------------------------------------------------------------------------------------
def new_request_id() -> str:
    """A request id for a request that reached us without one from API Gateway."""
    return "req_" + uuid.uuid4().hex


def request_id_from_context_header(headers: Mapping[str, str]) -> str:
    """The API Gateway request id the Lambda Web Adapter passes in `x-amzn-request-context`, or a new one.

    A client cannot choose it: an `X-Request-Id` it sends is ignored, so ledger entries name our ids only.
    """
    raw = header(headers, "x-amzn-request-context")
    if raw:
        try:
            context = json.loads(raw)
        except ValueError:
            context = None
        if isinstance(context, dict) and isinstance(context.get("requestId"), str) and context["requestId"]:
            return str(context["requestId"])[:128]
    return new_request_id()


def request_id_from_event(event: Mapping[str, Any]) -> str:
    """API Gateway's id of a proxy event's request."""
    return str((event.get("requestContext") or {}).get("requestId") or "") or new_request_id()


# --- the key check -----------------------------------------------------------------------------------------------
def bearer_key(headers: Mapping[str, str] | None) -> str:
    """The key of `Authorization: Bearer <key>`; 401 when there is none."""
    scheme, _, key = (header(headers, "authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise UnauthorizedError("send your API key as `Authorization: Bearer <key>`")
    return key.strip()


class KeyCheck:
    """Key -> account, remembered per warm instance for `ttl_seconds`: a revoked key stops within that time."""

    def __init__(self, lookup: Callable[[str], str | None], ttl_seconds: float) -> None:
        self.lookup = lookup
        self.ttl = ttl_seconds
        self._seen: dict[str, tuple[float, str]] = {}

    def account_for(self, headers: Mapping[str, str] | None) -> str:
        """The account of the request's key; 401 when it is missing, unknown or revoked."""
        key = bearer_key(headers)
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


# --- answers -----------------------------------------------------------------------------------------------------
def error_answer(exc: BulkApiError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, JSON body and headers of an error: `{"error": code, "code": code, "message": text, ...details}`."""
    headers = {"Retry-After": str(exc.details["retry_after"])} if "retry_after" in exc.details else {}
    return exc.status_code, exc.body(), headers


def answer_headers(request_id: str, origin: str | None, cors_setting: str) -> dict[str, str]:
    """The headers every answer carries: the request id, and CORS for an allowed Origin."""
    extra = cors.headers_for(origin, cors.allowed_origins(cors_setting)) if origin else {}
    return {**extra, REQUEST_ID_HEADER: request_id}
