"""What the REST function and the stream function share at the door: the request id every answer carries."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

REQUEST_ID_HEADER = "X-Request-Id"


def new_request_id() -> str:
    """A request id for a request that reached us without one from API Gateway."""
    return "req_" + uuid.uuid4().hex


def request_id_from_context_header(headers: Mapping[str, str]) -> str:
    """The API Gateway request id the Lambda Web Adapter passes in `x-amzn-request-context`, or a new one.

    A client cannot choose it: an `X-Request-Id` it sends is ignored, so ledger entries name our ids only.
    """
    raw = headers.get("x-amzn-request-context")
    if raw:
        try:
            context = json.loads(raw)
        except ValueError:
            context = None
        if isinstance(context, dict) and isinstance(context.get("requestId"), str) and context["requestId"]:
            return str(context["requestId"])[:128]
    return new_request_id()
