"""S3 ObjectCreated on uploads/ or drop/ -> split the file into work messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.adapters.blobs import BlobStore
from functions.adapters.credits import CreditStore
from functions.adapters.jobs import JobStore
from functions.adapters.messaging import MAX_MESSAGE_BYTES, FinalizerStarter, WorkQueue
from functions.composition import Function, Handler
from functions.enrich.phone import checked_region
from functions.logic import drops, intake, splitting
from functions.logic.function_ports import SplitterBlobPort
from functions.logic.ports import FinalizerPort, QueuePort, SplitCreditPort, SplitStorePort
from functions.observability import logger, metrics, tracer
from functions.settings import SplitterSettings


@dataclass(frozen=True)
class Deps:
    """What the splitter needs, built once per cold start."""

    store: SplitStorePort
    credits: SplitCreditPort
    blobs: SplitterBlobPort
    queue: QueuePort
    finalizer: FinalizerPort
    limits: splitting.SplitLimits

    @classmethod
    def from_settings(cls, settings: SplitterSettings) -> Deps:
        """The real adapters, and the limits from the settings."""
        return cls(
            store=JobStore(settings.jobs_table),
            credits=CreditStore(settings.jobs_table),
            blobs=BlobStore(settings.bucket),
            queue=WorkQueue(settings.work_queue_url),
            finalizer=FinalizerStarter(settings.finalizer_arn),
            limits=splitting.SplitLimits(
                rows_per_batch=settings.rows_per_batch,
                max_batch_bytes=settings.max_batch_bytes,
                max_rows=settings.max_rows_per_job,
                lease_seconds=settings.split_lease_seconds,
                max_message_bytes=MAX_MESSAGE_BYTES,
                phone_region=checked_region(settings.phone_default_region),
                max_file_bytes=settings.max_file_bytes,
            ),
        )


def handle_object(key: str, etag: str, sequencer: str, deps: Deps) -> str:
    """Split one created object; returns what happened (for logs and tests)."""
    store, blobs = deps.store, deps.blobs
    target = intake.route_key(key)
    claimed = False
    if isinstance(target, intake.UploadObject):
        # Claimed on the condition that this object is the job's file: the job is not read first.
        taken = splitting.claim(store, target.job_id, deps.limits, source_key=key)
        if taken is None:
            job = store.get_job(target.job_id)
            if job is not None and job.source_key == key:
                logger.info("split skipped: already claimed or job ended", job_id=job.id)
                return "skipped"
            # Its job was purged (or never was: the API writes the job before its file): a presigned form sent
            # again while still valid lands here. Nothing may keep the file, so it goes, every version of it.
            deleted = blobs.purge(key, exact=True)
            logger.warning("upload without a job deleted", key=key, versions=deleted)
            return "no_job"
        job, claimed = taken, True
    elif target is not None:  # a drop (or a file under drop/ that cannot be one: rejected)
        head = blobs.head(key)
        if head is None:  # deleted before we got to it: nothing to do
            return "gone"
        metadata = head.get("Metadata") or {}
        job = drops.job_for_drop(
            key, etag, sequencer, store, deps.credits, blobs, metadata.get("column"), metadata.get("sheet")
        )
        if job is None:
            return "rejected"
    else:
        logger.warning("object outside uploads/<account>/<job>.csv and drop/ ignored", key=key)
        return "ignored"
    result = splitting.split_job(
        job,
        store=store,
        credits=deps.credits,
        blobs=blobs,
        queue=deps.queue,
        finalizer=deps.finalizer,
        limits=deps.limits,
        claimed=claimed,
    )
    return "split" if result is not None else "skipped"


def handler_for(deps: Deps) -> Handler:
    """The splitter composed with its dependencies."""

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    @event_source(data_class=S3Event)
    def handle(event: S3Event, context: LambdaContext) -> dict[str, Any]:
        # S3 event notifications (also direct drops).
        outcomes = []
        for record in event.records:
            key = unquote_plus(record.s3.get_object.key)
            obj = record.s3.get_object
            outcome = handle_object(key, obj.etag or "", obj.sequencer or "", deps)
            logger.info("object handled", key=key, outcome=outcome)
            outcomes.append(outcome)
        return {"outcomes": outcomes}

    return handle


lambda_handler = Function(SplitterSettings, Deps.from_settings, handler_for)
