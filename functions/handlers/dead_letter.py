"""Work messages that exhausted their retries -> their rows counted as failed, so the job still ends."""

from __future__ import annotations

from dataclasses import dataclass

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from functions.adapters.blobs import BlobStore
from functions.adapters.jobs import JobStore
from functions.adapters.messaging import FinalizerStarter
from functions.composition import Function, Handler, sqs_handler
from functions.logic.ports import FinalizerPort, PartBlobPort, WorkStorePort
from functions.logic.processing import dead_letter_batch
from functions.models import Batch
from functions.observability import logger, metrics
from functions.settings import WorkerSettings


@dataclass(frozen=True)
class Deps:
    """What the dead-letter function needs, built once per cold start."""

    store: WorkStorePort
    blobs: PartBlobPort
    finalizer: FinalizerPort

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> Deps:
        """The real adapters."""
        return cls(JobStore(settings.jobs_table), BlobStore(settings.bucket), FinalizerStarter(settings.finalizer_arn))


def handler_for(deps: Deps) -> Handler:
    """The dead-letter function composed with its dependencies."""

    def record_handler(record: SQSRecord) -> None:
        # Write the batch's rows as `error` / `processing_failed` and count them.
        try:
            batch = Batch.model_validate_json(record.body)
        except ValidationError:
            logger.error("unreadable dead letter dropped", message_id=record.message_id)
            return
        if dead_letter_batch(batch, "processing_failed", store=deps.store, blobs=deps.blobs, finalizer=deps.finalizer):
            metrics.add_metric(name="RowsDeadLettered", unit="Count", value=len(batch.rows))

    return sqs_handler(record_handler)


lambda_handler = Function(WorkerSettings, Deps.from_settings, handler_for)
