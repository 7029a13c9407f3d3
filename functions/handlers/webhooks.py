"""Webhook sender: EventBridge bulk_job.* events fan out to endpoints; the retry queue brings later attempts."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.adapters.webhook_http import WebhookHttp
from functions.adapters.webhooks import RetryQueue, WebhookStore
from functions.composition import Function, Handler
from functions.logic import webhook_delivery
from functions.logic.function_ports import RetryQueuePort
from functions.logic.ports import SenderPort, WebhookStorePort
from functions.observability import logger, metrics, tracer
from functions.settings import WebhookSettings


def job_event_data(detail: dict[str, Any], api_base_url: str) -> dict[str, Any]:
    """What receivers get about a job: id, status, counts, credits, the summary and where to download the result."""
    data = {
        k: detail.get(k)
        for k in (
            "id",
            "status",
            "type",
            "total_rows",
            "processed",
            "succeeded",
            "invalid",
            "failed",
            "credits_used",
            "duplicates",
            "error",
            "completed_at",
            "summary",
        )
    }
    data["download_url"] = (
        f"{api_base_url.rstrip('/')}/api/bulk-jobs/download?id={detail['id']}"
        if api_base_url and detail.get("result_key")
        else None
    )
    return data


class CrashBeforeQueueing:
    """Test hook (BULKAPI_LOCAL_CRASH_AFTER_RECORD=true, never set by the stack): the first time each delivery is to be
    queued, the invocation dies as one killed there would, after the fan-out recorded the delivery and before its
    attempt was queued. The event's redelivery must then bring it to the receiver."""

    def __init__(self, retries: RetryQueuePort) -> None:
        self.retries = retries
        self.crashed: set[str] = set()

    def schedule(self, delivery: dict[str, Any], delay_seconds: int) -> None:
        """Die the first time for this delivery, else queue."""
        if delivery["id"] not in self.crashed:
            self.crashed.add(delivery["id"])
            logger.warning("sender killed after recording a delivery (test hook)", delivery=delivery["id"])
            raise RuntimeError(f"sender killed after recording {delivery['id']} (BULKAPI_LOCAL_CRASH_AFTER_RECORD)")
        self.retries.schedule(delivery, delay_seconds)

    def requeue(self, body: dict[str, Any], remaining: float) -> None:
        """Queue a not-yet-due message again."""
        self.retries.requeue(body, remaining)


@dataclass(frozen=True)
class Deps:
    """What the webhook sender needs, built once per cold start."""

    store: WebhookStorePort
    retries: RetryQueuePort
    sender: SenderPort
    api_base_url: str

    @classmethod
    def from_settings(cls, settings: WebhookSettings) -> Deps:
        """The real adapters."""
        retries: RetryQueuePort = RetryQueue(settings.retry_queue_url)
        if settings.local_crash_after_record:
            retries = CrashBeforeQueueing(retries)
        return cls(
            store=WebhookStore(settings.jobs_table),
            retries=retries,
            sender=WebhookHttp(allow_private=settings.allow_private_targets, timeout=settings.timeout_seconds),
            api_base_url=settings.api_base_url,
        )


def _on_event(event: dict[str, Any], deps: Deps) -> dict[str, Any]:
    detail = dict(event["detail"])
    event_type = str(event["detail-type"])
    queued = webhook_delivery.fan_out(
        str(detail["account_id"]),
        event_type,
        f"{detail['id']}_{detail['status']}",
        job_event_data(detail, deps.api_base_url),
        str(event.get("time") or detail.get("completed_at")),
        store=deps.store,
        retries=deps.retries,
    )
    logger.info("job event fanned out", job_id=detail["id"], event=event_type, queued=len(queued))
    return {"queued": queued}


def _on_retries(records: list[dict[str, Any]], deps: Deps) -> dict[str, Any]:
    failures = []
    for record in records:
        try:
            delivery = json.loads(record["body"])
            remaining = float(delivery.pop("not_before", 0)) - time.time()
            if remaining > 1:  # a long wait hops through the queue's 15-minute maximum delay
                deps.retries.requeue({**delivery, "not_before": time.time() + remaining}, remaining)
                continue
            status = webhook_delivery.attempt(delivery, store=deps.store, retries=deps.retries, sender=deps.sender)
            metrics.add_metric(name="WebhookAttempts", unit="Count", value=1)
            logger.info("webhook retried", delivery=delivery["id"], status=status, attempts=delivery["attempts"])
        except Exception:
            logger.exception("webhook retry failed", message_id=record.get("messageId"))
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def handler_for(deps: Deps) -> Handler:
    """The webhook sender composed with its dependencies."""

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        # An EventBridge event (detail-type bulk_job.*) or SQS records from the retry queue.
        if "Records" in event:
            return _on_retries(event["Records"], deps)
        return _on_event(event, deps)

    return handle


lambda_handler = Function(WebhookSettings, Deps.from_settings, handler_for)
