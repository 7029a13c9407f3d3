"""EventBridge bulk_job.* -> the account's webhook, signed per the Standard Webhooks spec."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.adapters.jobs import JobStore
from functions.logic import webhooks
from functions.observability import logger, tracer
from functions.settings import WebhookSettings, load


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    """Deliver one event; raising makes EventBridge retry it (then its DLQ)."""
    settings = load(WebhookSettings)
    store = JobStore(settings.jobs_table)
    detail = dict(event.detail)
    target = store.webhook_target(str(detail["account_id"]))
    if target is None:
        logger.info("no webhook configured", job_id=detail.get("id"), event=event.detail_type)
        return {"delivered": False}
    status = webhooks.deliver(
        target,
        event.detail_type,
        detail,
        timeout=settings.timeout_seconds,
        allow_private=settings.allow_private_targets,
    )
    logger.info("webhook delivered", job_id=detail.get("id"), status=status)
    return {"delivered": True, "status": status}
