"""SQS work messages -> enriched part files and counters (partial batch failures)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from functions.adapters.blobs import BlobStore
from functions.adapters.enrichment import RefreshingSources
from functions.adapters.jobs import JobStore
from functions.adapters.messaging import FinalizerStarter, WorkQueue
from functions.composition import Function, Handler, sqs_handler
from functions.enrich.online import Sources
from functions.logic.ports import FinalizerPort, PartBlobPort, RequeuePort, WorkStorePort
from functions.logic.processing import RecentJobs, process_batch
from functions.models import Batch
from functions.observability import metrics
from functions.settings import WorkerSettings


@dataclass(frozen=True)
class Deps:
    """What the worker needs, built once per cold start."""

    store: WorkStorePort
    blobs: PartBlobPort
    finalizer: FinalizerPort
    sources: Callable[[], Sources]
    requeue: RequeuePort | None
    recent: RecentJobs | None = None

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> Deps:
        """The real adapters."""
        return cls(
            store=JobStore(settings.jobs_table),
            blobs=BlobStore(settings.bucket),
            finalizer=FinalizerStarter(settings.finalizer_arn),
            sources=RefreshingSources(settings).current,
            requeue=WorkQueue(settings.work_queue_url) if settings.work_queue_url else None,
            recent=RecentJobs(),
        )


def handler_for(deps: Deps) -> Handler:
    """The worker composed with its dependencies."""

    def record_handler(record: SQSRecord) -> None:
        # One message = one batch of rows; raising marks only this message as failed.
        batch = Batch.model_validate_json(record.body)
        counted = process_batch(
            batch,
            store=deps.store,
            blobs=deps.blobs,
            finalizer=deps.finalizer,
            sources=deps.sources(),
            requeue=deps.requeue,
            recent=deps.recent,
        )
        if counted:
            metrics.add_metric(name="RowsProcessed", unit="Count", value=len(batch.rows))

    return sqs_handler(record_handler)


lambda_handler = Function(WorkerSettings, Deps.from_settings, handler_for)
