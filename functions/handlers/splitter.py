"""S3 ObjectCreated on uploads/ or drop/ -> split the file into work messages."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.adapters.blobs import BlobStore
from functions.adapters.credits import CreditStore
from functions.adapters.jobs import JobStore
from functions.adapters.messaging import MAX_MESSAGE_BYTES, Finalizer, WorkQueue
from functions.logic import intake, splitting
from functions.observability import logger, metrics, tracer
from functions.settings import SplitterSettings, load


def handle_object(key: str, etag: str, sequencer: str) -> str:
    """Split one created object; returns what happened (for logs and tests)."""
    settings = load(SplitterSettings)
    store, blobs = JobStore(settings.jobs_table), BlobStore(settings.bucket)
    credits = CreditStore(settings.jobs_table)
    target = intake.route_key(key)
    if isinstance(target, intake.UploadObject):
        job = store.get_job(target.job_id)
        if job is None or job.source_key != key:
            logger.warning("upload without a job ignored", key=key)
            return "no_job"
    elif target is not None:  # a drop (or a file under drop/ that cannot be one: rejected)
        head = blobs.head(key)
        if head is None:  # deleted before we got to it: nothing to do
            return "gone"
        column = (head.get("Metadata") or {}).get("column")
        job = splitting.job_for_drop(key, etag, sequencer, store, credits, blobs, column)
        if job is None:
            return "rejected"
    else:
        logger.warning("object outside uploads/<account>/<job>.csv and drop/ ignored", key=key)
        return "ignored"
    limits = splitting.SplitLimits(
        rows_per_batch=settings.rows_per_batch,
        max_batch_bytes=settings.max_batch_bytes,
        max_rows=settings.max_rows_per_job,
        lease_seconds=settings.split_lease_seconds,
        max_message_bytes=MAX_MESSAGE_BYTES,
    )
    result = splitting.split_job(
        job,
        store=store,
        credits=credits,
        blobs=blobs,
        queue=WorkQueue(settings.work_queue_url),
        finalizer=Finalizer(settings.finalizer_arn),
        limits=limits,
    )
    return "split" if result is not None else "skipped"


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=S3Event)
def lambda_handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    """Entry point for S3 event notifications (also direct drops)."""
    outcomes = []
    for record in event.records:
        key = unquote_plus(record.s3.get_object.key)
        outcome = handle_object(key, record.s3.get_object.etag or "", record.s3.get_object.sequencer or "")
        logger.info("object handled", key=key, outcome=outcome)
        outcomes.append(outcome)
    return {"outcomes": outcomes}
