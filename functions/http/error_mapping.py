"""Errors to HTTP answers, in one place: the project's exceptions, Powertools' validation errors and anything
unexpected all answer in the one error body (`functions.errors.BulkApiError.body`), never by matching message text."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
    ResponseValidationError,
)

from functions.errors import (
    BulkApiError,
    InputError,
    MethodNotAllowedError,
    RouteNotFoundError,
    UnsupportedMediaTypeError,
)
from functions.http.answers import error_answer
from functions.observability import logger

# A body field whose validation failure has a code of its own.
FIELD_CODES = {"url": "invalid_webhook_url", "events": "invalid_events"}
OUR_FAULT = "something went wrong on our side; the request id identifies it"


def error_response(exc: BulkApiError) -> Response[Any]:
    """An error as the resolver's answer."""
    status, body, headers = error_answer(exc)
    return Response(status_code=status, content_type="application/json", body=json.dumps(body), headers=headers)


def validation_error(errors: Any) -> InputError:
    """The first of pydantic's errors as our own error (`invalid_parameter`, `unknown_parameter`, ...)."""
    first = dict(errors[0]) if errors else {}
    loc = [str(part) for part in first.get("loc", ())]
    where, name = (loc[0] if loc else "body"), ".".join(loc[1:2])
    kind = str(first.get("type", ""))
    text = str(first.get("msg", "not valid"))
    if where == "body" and (kind in ("json_invalid", "model_attributes_type", "dict_type") or not name):
        return InputError("the body must be a JSON object with the documented fields", code="invalid_body")
    if kind == "extra_forbidden":
        return InputError(f"unknown field `{name}`", code="unknown_parameter", parameter=name)
    if kind == "missing":
        return InputError(f"`{name}` is required", code="missing_parameter", parameter=name)
    code = FIELD_CODES.get(name, "invalid_parameter") if where == "body" else "invalid_parameter"
    if where == "header" and name.lower() == "idempotency-key":
        code, name = "invalid_idempotency_key", "Idempotency-Key"
    return InputError(f"`{name}`: {text}", code=code, parameter=name)


def handle_api_error(exc: BulkApiError) -> Response[Any]:
    """Our errors carry their HTTP status and a machine-readable code."""
    if exc.status_code >= 500:
        logger.exception("request failed", error=exc.code)
    return error_response(exc)


def handle_validation_error(exc: RequestValidationError) -> Response[Any]:
    """A parameter or body field the route's types refuse: 400 naming it."""
    return error_response(validation_error(exc.errors()))


def handle_response_validation_error(exc: ResponseValidationError) -> Response[Any]:
    """An answer that does not match its documented model: logged, answered as our error."""
    logger.error("response does not match its model", errors=str(exc.errors())[:1000])
    return error_response(BulkApiError(OUR_FAULT))


def handle_unsupported_content_type(exc: RequestUnsupportedContentType) -> Response[Any]:
    """A JSON route sent another media type."""
    return error_response(
        UnsupportedMediaTypeError(
            "send the body as JSON with `Content-Type: application/json`", code="unsupported_media_type"
        )
    )


def handle_unexpected(exc: Exception) -> Response[Any]:
    """Anything else is our fault: logged in full, answered without internals."""
    logger.exception("unexpected error")
    return error_response(BulkApiError(OUR_FAULT))


def install(app: APIGatewayRestResolver) -> None:
    """Answer every error of `app` in the one error shape, an unknown route included."""
    app.exception_handler(BulkApiError)(handle_api_error)
    app.exception_handler(RequestValidationError)(handle_validation_error)
    app.exception_handler(ResponseValidationError)(handle_response_validation_error)
    app.exception_handler(RequestUnsupportedContentType)(handle_unsupported_content_type)
    app.exception_handler(Exception)(handle_unexpected)

    @app.not_found
    def handle_not_found(_: Exception) -> Response[Any]:
        """Unknown routes answer in the same error shape as everything else (405 for a known path)."""
        from functions.http.contract import STREAM_ROUTES  # loads with the first miss, not the start

        event = app.current_event
        path = event.path.rstrip("/") or "/"
        allowed = sorted({route.method.upper() for route in app._static_routes if route.path == path})
        if path in STREAM_ROUTES:
            allowed = ["POST"]
        if allowed:
            answer = error_response(MethodNotAllowedError(f"{path} takes {', '.join(allowed)}", allowed=allowed))
            answer.headers["Allow"] = ", ".join(allowed)
            return answer
        return error_response(RouteNotFoundError(f"no route {event.http_method} {event.path}"))
