"""The webhook endpoints of an account: register, change, remove, test, and read their delivery log."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.handlers.routes.deps import account, deps, json_answer
from functions.http.resolver import RequestRouter
from functions.http.route_facts import declares
from functions.logic import webhook_endpoints as hooks
from functions.models import (
    ID_MAX,
    DeliveriesResponse,
    WebhookCreatedResponse,
    WebhookCreateRequest,
    WebhookDeletedResponse,
    WebhookIdRequest,
    WebhookListResponse,
    WebhookResponse,
    WebhookTestResponse,
    WebhookUpdateRequest,
)

router = RequestRouter()

# The documents' examples name an endpoint by an id of the shape of one (put the id POST answered in its place).
AN_ENDPOINT = {"id": "wh_0123456789abcdef0123"}


@router.get("/api/webhooks", summary="List webhook endpoints", tags=["webhooks"])
def list_webhooks() -> Response[WebhookListResponse]:
    """The account's webhook endpoints (secrets are never shown again)."""
    return json_answer(200, {"webhooks": hooks.list_endpoints(deps().webhooks, account())})


@router.post("/api/webhooks", summary="Register a webhook endpoint", tags=["webhooks"])
@declares(
    body="json",
    errors=("invalid_webhook_url", "invalid_events", "too_many_webhooks"),
    success=201,
    # A host that resolves: the API refuses one that does not.
    example={"url": "https://example.com/bulkapi-webhook", "events": ["bulk_job.completed"]},
)
def create_webhook(body: WebhookCreateRequest) -> Response[WebhookCreatedResponse]:
    """Register an endpoint; the answer carries its signing secret, this once."""
    created = hooks.create_endpoint(
        deps().webhooks,
        account(),
        body.model_dump(exclude_unset=True),
        targets=deps().targets,
    )
    return json_answer(201, created)


@router.put("/api/webhooks", summary="Change a webhook endpoint", tags=["webhooks"])
@declares(
    body="json",
    errors=("invalid_webhook_url", "invalid_events", "webhook_not_found"),
    example={**AN_ENDPOINT, "description": "CRM sync", "is_active": True},
)
def update_webhook(body: WebhookUpdateRequest) -> Response[WebhookResponse]:
    """Change url, events, description or is_active."""
    updated = hooks.update_endpoint(
        deps().webhooks,
        account(),
        body.model_dump(exclude_unset=True),
        targets=deps().targets,
    )
    return json_answer(200, updated)


@router.delete("/api/webhooks", summary="Remove a webhook endpoint", tags=["webhooks"])
@declares(body="json", errors=("webhook_not_found",), example=AN_ENDPOINT)
def delete_webhook(body: WebhookIdRequest) -> Response[WebhookDeletedResponse]:
    """Remove an endpoint and its delivery history (`{"id"}` in the JSON body, as the official clients send it)."""
    hooks.delete_endpoint(deps().webhooks, account(), body.id)
    return json_answer(200, {"id": body.id, "deleted": True})


@router.post("/api/webhooks/test", summary="Send a test event now", tags=["webhooks"])
@declares(body="json", errors=("webhook_not_found",), example=AN_ENDPOINT)
def test_webhook(body: WebhookIdRequest) -> Response[WebhookTestResponse]:
    """Send a signed `webhook.test` event now and report what the endpoint answered."""
    result = hooks.send_test(deps().webhooks, account(), body.id, targets=deps().targets)
    return json_answer(200, result)


@router.get("/api/webhooks/deliveries", summary="An endpoint's delivery log", tags=["webhooks"])
@declares(errors=("invalid_parameter", "missing_parameter", "webhook_not_found"))
def webhook_deliveries(
    webhook_id: Annotated[str, Query(min_length=1, max_length=ID_MAX, description="the endpoint's id")],
) -> Response[DeliveriesResponse]:
    """The endpoint's last 50 delivery attempts."""
    return json_answer(200, {"deliveries": hooks.list_deliveries(deps().webhooks, account(), webhook_id)})
