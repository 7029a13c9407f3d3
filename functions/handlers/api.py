"""The REST API's function: the resolver with the routers of each feature, the key check first, and every answer's
request id and CORS headers.

Thin: Powertools' resolver validates typed, bounded parameters and bodies (`enable_validation=True`), then each route
(handlers/routes/: service, job intake, jobs, credits, webhooks) calls logic and shapes the answer. The front door it
shares with the stream function (the key check, the error body, the request id, CORS) and the OpenAPI document it
serves are in functions/http/.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.composition import Function, Handler
from functions.errors import BulkApiError
from functions.handlers.routes import credits, job_intake, jobs, service, webhooks
from functions.handlers.routes.deps import Deps
from functions.http import error_mapping
from functions.http.access import KeyCheck, account_from_event, header, is_public
from functions.http.answers import answer_headers, proxy_error, request_id_from_event
from functions.http.resolver import RequestResolver, reject_unknown_parameters
from functions.http.route_facts import json_body_routes, refuse_unreadable_body
from functions.observability import logger, metrics, tracer
from functions.settings import ApiSettings

# A response that breaks its own model is our defect: 500, not Powertools' default of reporting it as a request error.
app = RequestResolver(enable_validation=True, response_validation_error_http_code=500)
app.use(middlewares=[reject_unknown_parameters])
error_mapping.install(app)
# In the order of the document's paths (openapi.json): a path is listed where its first route is included.
for feature in (service, job_intake, credits, jobs, webhooks):
    app.include_router(feature.router)
JSON_BODY_ROUTES = json_body_routes(app._static_routes)


def document() -> dict[str, Any]:
    """The OpenAPI document of this API (built once per process; `bulkapi openapi` prints it)."""
    from functions.http import contract  # its models load with the first request for the document, not every start

    return contract.document(app)


def _authenticate(event: dict[str, Any], keys: KeyCheck) -> dict[str, Any] | None:
    """The account of the request's key, put in the resolver's context; the 401 answer when there is none."""
    if is_public(str(event.get("path") or "")) or event.get("httpMethod") == "OPTIONS":
        return None
    try:
        # API Gateway's authorizer checked the key already; the key check is for a request without its context.
        account_id = account_from_event(event) or keys.account_for(event.get("headers"))
    except BulkApiError as exc:
        return proxy_error(exc)
    app.append_context(account_id=account_id)  # type: ignore[no-untyped-call]
    logger.append_keys(account_id=account_id)
    return None


def _refuse_unreadable_body(event: dict[str, Any]) -> dict[str, Any] | None:
    refused = refuse_unreadable_body(event, JSON_BODY_ROUTES)
    return proxy_error(refused) if refused else None


def handler_for(deps: Deps) -> Handler:
    """The API composed with its dependencies."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        # The key check first (before any parameter is looked at), then the route.
        app.append_context(deps=deps)  # type: ignore[no-untyped-call]
        try:
            response = _authenticate(event, deps.keys) or _refuse_unreadable_body(event) or app.resolve(event, context)
        finally:
            app.clear_context()  # type: ignore[no-untyped-call]
        extra = answer_headers(
            request_id_from_event(event), header(event.get("headers"), "origin"), deps.settings.cors_origins
        )
        if "multiValueHeaders" in response:
            response["multiValueHeaders"].update({k: [v] for k, v in extra.items()})
        else:
            response.setdefault("headers", {}).update(extra)
        return response

    return handle


lambda_handler = Function(ApiSettings, Deps.from_settings, handler_for)
