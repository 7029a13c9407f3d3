"""SQS work messages -> enriched part files and counters (partial batch failures)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.adapters.blobs import BlobStore
from functions.adapters.enrichment import sources_for
from functions.adapters.jobs import JobStore
from functions.adapters.messaging import Finalizer, WorkQueue
from functions.logic.processing import process_batch
from functions.models import Batch
from functions.observability import logger, metrics, tracer
from functions.settings import WorkerSettings, load


def record_handler(record: SQSRecord) -> None:
    """One message = one batch of rows; raising marks only this message as failed."""
    settings = load(WorkerSettings)
    batch = Batch.model_validate_json(record.body)
    counted = process_batch(
        batch,
        store=JobStore(settings.jobs_table),
        blobs=BlobStore(settings.bucket),
        finalizer=Finalizer(settings.finalizer_arn),
        sources=sources_for(WorkerSettings),
        requeue=WorkQueue(settings.work_queue_url) if settings.work_queue_url else None,
    )
    if counted:
        metrics.add_metric(name="RowsProcessed", unit="Count", value=len(batch.rows))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """SQS event source entry point; returns batchItemFailures."""
    # A processor per invocation: it holds the batch's state (and the local runtime runs invocations in threads).
    processor = BatchProcessor(event_type=EventType.SQS)
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
