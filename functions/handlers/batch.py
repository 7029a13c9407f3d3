"""What the SQS-driven functions share: a handler that runs each record and reports failures per record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.composition import Handler
from functions.observability import logger, metrics, tracer


def sqs_handler(record_handler: Callable[[SQSRecord], None]) -> Handler:
    """An SQS event source handler: each record through `record_handler`; one that raises is reported in
    `batchItemFailures` (only it is retried). Logs start clean each invocation (no previous job's ids)."""

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        # A processor per invocation: it holds the batch's state (and the local runtime runs invocations in threads).
        processor = BatchProcessor(event_type=EventType.SQS)
        return dict(
            process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
        )

    return handle
