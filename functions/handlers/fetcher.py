"""SQS fetch requests -> the job's file, fetched from its URL into the bucket (its S3 event then starts the split)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.adapters.blobs import BlobStore
from functions.adapters.jobs import JobStore
from functions.adapters.messaging import Finalizer
from functions.adapters.remote_file import RemoteFiles
from functions.logic.fetching import fetch_job
from functions.observability import logger, metrics, tracer
from functions.settings import FetcherSettings, load


def record_handler(record: SQSRecord) -> None:
    """One message = one job's fetch; raising (an AWS call failed) leaves it to the queue to retry."""
    settings = load(FetcherSettings)
    job_id = str(json.loads(record.body)["job_id"])
    logger.append_keys(job_id=job_id)
    outcome = fetch_job(
        job_id,
        store=JobStore(settings.jobs_table),
        fetcher=RemoteFiles(
            BlobStore(settings.bucket),
            allow_private=settings.allow_private_targets,
            timeout_seconds=settings.fetch_timeout_seconds,
        ),
        finalizer=Finalizer(settings.finalizer_arn),
        max_bytes=settings.max_upload_object_bytes,
    )
    if outcome != "skipped":
        metrics.add_metric(name="FilesFetched" if outcome == "fetched" else "FetchesFailed", unit="Count", value=1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """SQS event source entry point; returns batchItemFailures."""
    processor = BatchProcessor(event_type=EventType.SQS)
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
