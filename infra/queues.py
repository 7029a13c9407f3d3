"""Queues where failures end: a work queue with its dead-letter queue, and a function's own dead-letter queue.

All encrypted and TLS-only; what lands in a dead-letter queue is kept 14 days for an operator to read and redrive.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct


def queue_with_dlq(
    scope: Construct,
    name: str,
    *,
    visibility: Duration,
    retention: Duration,
    max_receives: int,
    dlq_visibility: Duration | None = None,
) -> tuple[sqs.Queue, sqs.Queue]:
    """`<name>Queue` and `<name>Dlq`: a message received `max_receives` times without success moves to the DLQ.

    `dlq_visibility` is for a DLQ that has a consumer of its own (it then needs the consumer's timeout rule).
    """
    dlq = sqs.Queue(
        scope,
        f"{name}Dlq",
        retention_period=Duration.days(14),
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        visibility_timeout=dlq_visibility,
    )
    queue = sqs.Queue(
        scope,
        f"{name}Queue",
        visibility_timeout=visibility,
        retention_period=retention,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=max_receives),
    )
    return queue, dlq


def failure_queue(scope: Construct, construct_id: str) -> sqs.Queue:
    """A function's dead-letter queue (its DeadLetterConfig), where Lambda puts an asynchronous event it gave up on:
    kept 14 days for an operator to read and replay (README "Dead letters"); an alarm watches its depth.

    cdk-nag (AwsSolutions-SQS3) sees it as a dead-letter queue through the function's DeadLetterConfig, which it
    did not for an on-failure destination: no acknowledgement is needed."""
    return sqs.Queue(
        scope,
        construct_id,
        retention_period=Duration.days(14),
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
    )
