"""The API's contract as an OpenAPI 3.1 document, generated from the routes themselves.

Powertools' resolver describes the REST routes (their typed parameters, bodies and answers); this module adds what it
cannot see: the key, the errors each route answers with their codes (`functions.errors.API_ERRORS`), the multipart
form that creates a job, the streaming routes of the stream function (`text/event-stream` with the schema of each
frame) and the webhook deliveries (the document's `webhooks`). Served at `GET /api/openapi.json` and, as a page,
`GET /api/docs`; a copy is committed as `openapi.json` (`bulkapi openapi > openapi.json`, checked by a test).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from functions.errors import API_ERRORS
from functions.http.access import PUBLIC_ROUTES
from functions.http.route_facts import (
    BODY_CODES,
    IDEMPOTENCY_CODES,
    KEYED_CODES,
    NO_FACTS,
    PUBLIC_CODES,
    RouteFacts,
    facts_of,
)
from functions.models import ErrorResponse, JobCreateRequest, WebhookEvent

TITLE = "bulkapi"
VERSION = "1.0.0"
DESCRIPTION = (
    "Bulk enrichment: small lists answered inline as Server-Sent Events, large lists as CSV jobs processed in the "
    "background, with progress, a downloadable result, credits per row and signed webhooks. Every route but "
    "health and this document needs `Authorization: Bearer <key>`. Every answer carries `X-Request-Id`."
)
# The public routes (all GET): no key, no `security`.
PUBLIC = {("get", path) for path in PUBLIC_ROUTES}
REASONS = {
    400: "the request is not valid",
    401: "missing or unknown key",
    402: "the balance does not cover the request",
    403: "deployed: the account has no usage plan key yet",
    404: "no such resource for this key",
    405: "the route does not take this method",
    409: "the resource is not in a state that allows this",
    410: "the result is no longer kept; retrying will not bring it back",
    413: "the body is too large",
    415: "the body is not JSON",
    422: "the Idempotency-Key was used with another request",
    429: "deployed: the account's rate or quota is used up; retry later",
    500: "our fault; the request id identifies it",
    503: "storage is unavailable for a moment; retry",
}
# The shared answer of each error status (`components/responses`); each operation lists its own codes beside it.
RESPONSE_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    402: "PaymentRequired",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    413: "ContentTooLarge",
    415: "UnsupportedMediaType",
    422: "UnprocessableContent",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}
STREAM_CODES = (
    *BODY_CODES,
    "invalid_body",
    "empty_list",
    "too_many_items",
    "unsupported_media_type",
    "insufficient_credits",
    *IDEMPOTENCY_CODES,
)


class InlineEmailsRequest(BaseModel):
    """An inline email lookup."""

    model_config = ConfigDict(extra="forbid")

    emails: list[str] = Field(min_length=1, max_length=1000)


class InlineQueriesRequest(BaseModel):
    """An inline search."""

    model_config = ConfigDict(extra="forbid")

    queries: list[str] = Field(min_length=1, max_length=100)


class ResultFrame(BaseModel):
    """`event: result`: the input echoed (`email` or `query`) and the type's columns."""

    model_config = ConfigDict(extra="allow")


class ErrorFrame(BaseModel):
    """`event: error`: the input echoed, why it has no result, and for emails `validity`."""

    model_config = ConfigDict(extra="allow")

    error: str
    message: str
    validity: str | None = Field(default=None, description="emails only: `invalid`, or `unknown` when not checked")


class SearchSummaryFrame(BaseModel):
    """`event: done` of a search: the totals, in the shape the official clients read `credits_used` from."""

    results: list[Any] = Field(max_length=0)
    total: int
    credits_used: int


class EmailTotals(BaseModel):
    """The JSON of an email lookup's `: done {...}` comment line."""

    total: int
    credits_used: int


STREAM_ROUTES: dict[str, tuple[str, type[BaseModel]]] = {
    "/api/bulk-lookup": ("email", InlineEmailsRequest),
    "/api/agent/bulk-lookup": ("email", InlineEmailsRequest),
    "/api/bulk-google-search": ("google", InlineQueriesRequest),
    "/api/bulk-company-search": ("company", InlineQueriesRequest),
    "/api/bulk-domain-search": ("domain", InlineQueriesRequest),
    "/api/bulk-ip-search": ("ip", InlineQueriesRequest),
}
# What the docs page sends from "Try it out" (a list of "string" is answered, but says nothing).
STREAM_EXAMPLES: dict[str, dict[str, list[str]]] = {
    "email": {"emails": ["jane.doe@example.com"]},
    "google": {"queries": ["bulk email verification"]},
    "company": {"queries": ["Example Corp"]},
    "domain": {"queries": ["example.com"]},
    "ip": {"queries": ["8.8.8.8"]},
}
EMAIL_GRAMMAR = (
    "One `data:` frame per input, in input order (`event: result` or `event: error`), then the totals as an SSE "
    'comment `: done {"total": N, "credits_used": M}` (schema `EmailTotals`), then `data: [DONE]`.'
)
SEARCH_GRAMMAR = (
    "One `data:` frame per query, in input order (`event: result` or `event: error`), then `event: done` with "
    '`data: {"results": [], "total": N, "credits_used": M}` (schema `SearchSummaryFrame`), then `data: [DONE]`.'
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def error_responses() -> dict[str, Any]:
    """`components/responses`: one answer per error status, all in the one `ErrorResponse` shape."""
    return {
        RESPONSE_NAMES[status]: {
            "description": REASONS[status],
            "content": {"application/json": {"schema": _ref("ErrorResponse")}},
        }
        for status in sorted(set(API_ERRORS.values()))
    }


def _errors_for(codes: tuple[str, ...], public: bool) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """An operation's error answers (references to the shared ones, described with this route's codes), and its
    codes by status (`x-error-codes`)."""
    by_status: dict[str, list[str]] = {}
    for code in sorted({*codes, *(PUBLIC_CODES if public else KEYED_CODES)}):
        by_status.setdefault(str(API_ERRORS[code]), []).append(code)
    responses = {
        status: {
            "$ref": f"#/components/responses/{RESPONSE_NAMES[int(status)]}",
            "description": f"{REASONS[int(status)]}: " + ", ".join(f"`{code}`" for code in listed),
        }
        for status, listed in sorted(by_status.items())
    }
    return responses, dict(sorted(by_status.items()))


def _add_schema(doc: dict[str, Any], model: type[BaseModel]) -> None:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        doc["components"]["schemas"].setdefault(name, sub)
    doc["components"]["schemas"][model.__name__] = schema


def _stream_operation(path: str, job_type: str, body: type[BaseModel]) -> dict[str, Any]:
    grammar = EMAIL_GRAMMAR if job_type == "email" else SEARCH_GRAMMAR
    errors, errors_by_status = _errors_for(STREAM_CODES, public=False)
    frames = {"result": _ref("ResultFrame"), "error": _ref("ErrorFrame")}
    if job_type != "email":
        frames["done"] = _ref("SearchSummaryFrame")
    return {
        "post": {
            "summary": f"Inline {job_type} {'lookup' if job_type == 'email' else 'search'}, streamed",
            "operationId": "inline_" + path.strip("/").replace("/", "_").replace("-", "_"),
            "tags": ["inline"],
            "description": grammar,
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref(body.__name__), "example": STREAM_EXAMPLES[job_type]}},
            },
            "x-error-codes": errors_by_status,
            "responses": {
                "200": {
                    "description": grammar,
                    "content": {
                        "text/event-stream": {
                            # Before OpenAPI 3.2, a stream's `schema` describes each of its events.
                            "schema": _ref("SseEvent"),
                            "x-sse-frames": frames,
                        }
                    },
                },
                **errors,
            },
        }
    }


SSE_EVENT = {
    "type": "object",
    "description": "One event of the stream: a result, an error, a search's summary, or the final `[DONE]`. "
    "`data` is one line of JSON (see `x-sse-frames` for each event's schema) or `[DONE]`.",
    "required": ["data"],
    "properties": {
        # `data: [DONE]` names no event, which Server-Sent Events calls `message`.
        "event": {"type": "string", "enum": ["result", "error", "done", "message"]},
        "data": {"type": "string", "minLength": 1},
    },
}


def _describe(operation: dict[str, Any], facts: RouteFacts, public: bool) -> None:
    """Add to a generated operation what its route declared (`route_facts.declares`) and what every route answers."""
    responses = operation["responses"]
    # Powertools' own 422 (request) and 500 (response validation) become our error shapes below.
    responses.pop("422", None)
    responses.pop("500", None)
    if facts.success != 200:
        responses[str(facts.success)] = responses.pop("200")
    if public:
        operation["security"] = []
    errors, errors_by_status = _errors_for(facts.codes, public)
    responses.update(errors)
    operation["x-error-codes"] = errors_by_status
    for status, description in facts.also.items():
        responses[str(status)] = {**responses[str(facts.success)], "description": description}
    if facts.request_body is not None:
        operation["requestBody"] = dict(facts.request_body)
    if facts.example is not None:
        operation["requestBody"]["content"]["application/json"]["example"] = dict(facts.example)


def build(app: Any) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the REST routes of `app` plus the stream routes and the webhooks."""
    schema = app.get_openapi_schema(title=TITLE, version=VERSION, description=DESCRIPTION, openapi_version="3.1.0")
    doc: dict[str, Any] = json.loads(schema.model_dump_json(by_alias=True, exclude_none=True))
    doc.setdefault("components", {}).setdefault("schemas", {})
    for generic in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        doc["components"]["schemas"].pop(generic, None)
    doc["components"]["securitySchemes"] = {
        "apiKey": {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <key>`"}
    }
    doc["security"] = [{"apiKey": []}]
    models: tuple[type[BaseModel], ...] = (
        ErrorResponse,
        InlineEmailsRequest,
        InlineQueriesRequest,
        ResultFrame,
        ErrorFrame,
        SearchSummaryFrame,
        EmailTotals,
        WebhookEvent,
        JobCreateRequest,
    )
    for model in models:
        _add_schema(doc, model)
    doc["components"]["schemas"]["SseEvent"] = SSE_EVENT
    doc["components"]["responses"] = error_responses()
    declared = {(route.method.lower(), route.path): facts_of(route.func) for route in app._static_routes}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            _describe(operation, declared.get((method, path), NO_FACTS), public=(method, path) in PUBLIC)
    for path, (job_type, body) in STREAM_ROUTES.items():
        doc["paths"][path] = _stream_operation(path, job_type, body)
    doc["webhooks"] = {
        event: {
            "post": {
                "summary": f"`{event}`, signed per Standard Webhooks",
                "requestBody": {"content": {"application/json": {"schema": _ref("WebhookEvent")}}},
                "responses": {"2XX": {"description": "delivered; anything else is retried"}},
            }
        }
        for event in ("bulk_job.completed", "bulk_job.failed", "bulk_job.cancelled")
    }
    return doc


def swagger_page(document: dict[str, Any]) -> str:
    """A docs page for the document, with Swagger UI's own files inlined (no CDN needed)."""
    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

    assets = Path(generate_swagger_html.__code__.co_filename).parent
    js = (assets / "swagger-ui-bundle.min.js").read_text()
    css = (assets / "swagger-ui.min.css").read_text()
    return generate_swagger_html(json.dumps(document), js, css, "", None)


@functools.cache
def document(app: Any) -> dict[str, Any]:
    """The OpenAPI document of `app`, built once per resolver (`bulkapi openapi` prints it)."""
    return build(app)
