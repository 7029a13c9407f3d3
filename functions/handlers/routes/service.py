"""The service's own routes, all public: health, the API's contract (document and page), the console, and `/`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from functions.handlers.routes.deps import deps, json_answer
from functions.http.access import header
from functions.http.resolver import RequestRouter
from functions.models import HealthResponse

router = RequestRouter()

HTML_PAGE: dict[int, OpenAPIResponse] = {
    200: {"description": "an HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}
}
# The page runs its own inline script and calls this API (and, for a presigned upload or a large download, storage).
CONSOLE_POLICY = (
    "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' https: http:; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@router.get("/api/health", summary="Readiness (no key)", tags=["service"])
def health() -> Response[HealthResponse]:
    """Liveness: answers without a key."""
    return json_answer(200, HealthResponse(status="ok"))


@router.get("/api/openapi.json", summary="This document (no key)", tags=["service"])
def openapi_document() -> Response[dict[str, Any]]:
    """The OpenAPI 3.1 document of this API."""
    from functions.http import contract  # its models load with the first request for the document, not every start

    return json_answer(200, contract.document(router.resolver))


@router.get("/api/docs", summary="The document as a page (no key)", tags=["service"], responses=HTML_PAGE)
def docs_page() -> Response[str]:
    """Swagger UI on the document."""
    from functions.http import contract

    return Response(
        status_code=200,
        content_type="text/html; charset=utf-8",
        body=contract.swagger_page(contract.document(router.resolver)),
        # The page shares the console's origin, whose sessionStorage holds the key: the same policy, no framing.
        headers={"Content-Security-Policy": CONSOLE_POLICY},
    )


@router.get("/console", summary="The web console (no key: it asks for one)", tags=["service"], responses=HTML_PAGE)
def console_page() -> Response[str]:
    """Upload, preview, start and watch jobs; the ledger; webhooks. One static page, no build step."""
    return Response(
        status_code=200,
        content_type="text/html; charset=utf-8",
        body=deps().console_html,
        headers={"Content-Security-Policy": CONSOLE_POLICY, "Cache-Control": "no-cache"},
    )


@router.get(
    "/",
    summary="The service's root: a redirect to the web console (no key)",
    tags=["service"],
    responses={
        302: {
            "description": "`Location` is the console's address",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def root_page() -> Response[str]:
    """`/` sends a browser to the console (a 302, no key needed)."""
    # On an execute-api host the stage is the first part of the path (`/prod/console`); behind a custom domain or
    # locally there is no stage in the URL.
    event = router.current_event
    host = header(event.headers, "host") or ""
    stage = str((event.raw_event.get("requestContext") or {}).get("stage") or "")
    prefix = f"/{stage}" if stage and host.endswith(".amazonaws.com") else ""
    return Response(
        status_code=302,
        content_type="text/plain; charset=utf-8",
        body="the console is at /console\n",
        headers={"Location": f"{prefix}/console"},
    )
