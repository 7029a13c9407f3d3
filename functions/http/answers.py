"""What every answer of the api and stream functions carries: the request id, CORS for an allowed origin, and errors
in the one body shape (`functions.errors.BulkApiError.body`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from functions.errors import BulkApiError
from functions.http import cors
from functions.http.access import header

REQUEST_ID_HEADER = "X-Request-Id"


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


# --- answers -----------------------------------------------------------------------------------------------------
def error_answer(exc: BulkApiError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, JSON body and headers of an error: `{"error": code, "code": code, "message": text, ...details}`."""
    headers = {"Retry-After": str(exc.details["retry_after"])} if "retry_after" in exc.details else {}
    return exc.status_code, exc.body(), headers


def proxy_error(exc: BulkApiError) -> dict[str, Any]:
    """An error as a Lambda proxy response: the api function's answer before its resolver runs."""
    status, body, headers = error_answer(exc)
    return {
        "statusCode": status,
        "multiValueHeaders": {"Content-Type": ["application/json"], **{k: [v] for k, v in headers.items()}},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def answer_headers(request_id: str, origin: str | None, cors_setting: str) -> dict[str, str]:
    """The headers every answer carries: the request id, and CORS for an allowed Origin."""
    extra = cors.headers_for(origin, cors.allowed_origins(cors_setting)) if origin else {}
    return {**extra, REQUEST_ID_HEADER: request_id}
