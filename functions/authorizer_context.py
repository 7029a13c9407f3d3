"""The account the API's Lambda authorizer attached to a request, as the API and stream functions receive it.

- The api function gets API Gateway's proxy event: `requestContext.authorizer.account_id`.
- The stream function runs behind the Lambda Web Adapter, which puts the event's request context into the
  `x-amzn-request-context` header as JSON (replacing any such header the client sent) before it calls the app.
None means no authorizer context (a caller that did not go through one): the caller then checks the key itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

REQUEST_CONTEXT_HEADER = "x-amzn-request-context"


def account_from_context(request_context: Any) -> str | None:
    """`authorizer.account_id` of a request context, or None."""
    authorizer = request_context.get("authorizer") if isinstance(request_context, Mapping) else None
    account_id = authorizer.get("account_id") if isinstance(authorizer, Mapping) else None
    return account_id if isinstance(account_id, str) and account_id else None


def account_from_event(event: Mapping[str, Any]) -> str | None:
    """The authorizer's account of an API Gateway proxy event."""
    return account_from_context(event.get("requestContext"))


def account_from_headers(headers: Mapping[str, str]) -> str | None:
    """The authorizer's account from the Web Adapter's `x-amzn-request-context` header."""
    raw = headers.get(REQUEST_CONTEXT_HEADER)
    if not raw:
        return None
    try:
        context = json.loads(raw)
    except ValueError:
        return None
    return account_from_context(context)
