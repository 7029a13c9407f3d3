"""The finalizer state machine's tasks: assemble, complete, fail. Errors propagate so Retry/Catch see them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.adapters.blobs import BlobStore
from functions.adapters.credits import CreditStore
from functions.adapters.jobs import JobStore
from functions.adapters.messaging import EventBus
from functions.composition import Function, Handler
from functions.logic import finalize
from functions.logic.ports import EventPort, FinalBlobPort, FinalStorePort, SettlePort
from functions.observability import logger, metrics, tracer
from functions.settings import FinalizerSettings


def _cause(event: dict[str, Any]) -> tuple[str, str]:
    error = event.get("error") or {}
    name = str(error.get("Error") or "finalizer_failed")
    return "finalizer_failed", f"{name}: {str(error.get('Cause') or '')[:500]}"


@dataclass(frozen=True)
class Deps:
    """What the finalizer needs, built once per cold start."""

    store: FinalStorePort
    credits: SettlePort
    blobs: FinalBlobPort
    events: EventPort
    bucket: str

    @classmethod
    def from_settings(cls, settings: FinalizerSettings) -> Deps:
        """The real adapters."""
        return cls(
            JobStore(settings.jobs_table),
            CreditStore(settings.jobs_table),
            BlobStore(settings.bucket),
            EventBus(settings.event_bus_name),
            settings.bucket,
        )


def handler_for(deps: Deps) -> Handler:
    """The finalizer composed with its dependencies."""
    store, credits, blobs, events, bucket = deps.store, deps.credits, deps.blobs, deps.events, deps.bucket

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        # Dispatch on `action`, as set by each Task state of the definition in infra/finalizer.py.
        job_id = str(event["job_id"])
        action = event.get("action")
        logger.append_keys(job_id=job_id)
        if action == "assemble":
            return finalize.assemble_result(job_id, store=store, blobs=blobs)
        if action == "complete":
            outcome = finalize.complete_job(
                job_id, store=store, credits=credits, events=events, bucket=bucket, blobs=blobs
            )
            metrics.add_metric(name=f"Jobs{outcome['status'].capitalize()}", unit="Count", value=1)
            metrics.add_metric(name="CreditsUsed", unit="Count", value=outcome["credits_used"])
            return outcome
        if action == "fail":
            code, message = _cause(event)
            metrics.add_metric(name="JobsFailed", unit="Count", value=1)
            return finalize.fail_job(
                job_id, code, message, store=store, credits=credits, events=events, bucket=bucket, blobs=blobs
            )
        raise ValueError(f"unknown finalizer action {action!r}")

    return handle


lambda_handler = Function(FinalizerSettings, Deps.from_settings, handler_for)
