"""SQS variant requests -> a filtered, re-delimited or JSON Lines copy of a result, built by streaming."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from functions.adapters.blobs import BlobStore
from functions.adapters.jobs import JobStore
from functions.logic import variants
from functions.observability import logger, metrics, tracer
from functions.settings import VariantSettings, load


class VariantRequest(BaseModel):
    """What the API sends when a download asks for a variant that does not exist yet."""

    job_id: str
    variant: str


def record_handler(record: SQSRecord) -> None:
    """One message = one variant to build; raising marks only this message as failed (it is retried)."""
    settings = load(VariantSettings)
    request = VariantRequest.model_validate_json(record.body)
    logger.append_keys(job_id=request.job_id)
    outcome = variants.build(
        request.job_id, request.variant, store=JobStore(settings.jobs_table), blobs=BlobStore(settings.bucket)
    )
    logger.info("variant request handled", variant=request.variant, outcome=outcome)
    if outcome == "built":
        metrics.add_metric(name="VariantsBuilt", unit="Count", value=1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """SQS event source entry point; returns batchItemFailures."""
    processor = BatchProcessor(event_type=EventType.SQS)
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
