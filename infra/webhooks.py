"""Webhooks: bulk_job.* on the bus -> the webhook sender; later attempts come back through its retry queue.

EventBridge API destinations cannot HMAC-sign a body, so the sender is a Lambda (Standard Webhooks signatures).
The sender fans an event out to the account's endpoints and schedules failed attempts on the retry queue itself
(delays up to about 24 h, in hops of at most 15 min). EventBridge invokes the sender asynchronously: its target
retry policy covers only handing the event to Lambda (then the DLQ); when the sender itself fails, Lambda retries
twice and then puts the event in the same DLQ (its own dead-letter queue), where it would otherwise be dropped. Both
put the event itself there, so one replay reads both.
A retry message whose processing keeps failing goes to the retry DLQ.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import StackConfig
from infra.functions import FunctionFactory
from infra.pipeline import ASYNC_MAX_EVENT_AGE, ASYNC_RETRIES, VISIBILITY_FACTOR
from infra.storage import StorageConstruct

EVENT_SOURCE = "bulkapi"
DETAIL_TYPE_PREFIX = "bulk_job."
SENDER_TIMEOUT_SECONDS = 60
# Each attempt may wait for the receiver up to its timeout (10 s by default): 4 fit in one invocation.
RETRY_BATCH_SIZE = 4


def _queue(scope: Construct, construct_id: str, **kwargs: object) -> sqs.Queue:
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        **kwargs,  # type: ignore[arg-type]
    )


class WebhooksConstruct(Construct):
    """The sender, the rule and the retry queue that drive it, and the dead-letter queues of both."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        functions: FunctionFactory,
        storage: StorageConstruct,
        bus: events.IEventBus,
        api_url: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dlq = _queue(self, "Dlq", retention_period=Duration.days(14))
        # The dead-letter queue of the bulk_job.* rule's Lambda target (EventBridge DeadLetterConfig) and of the sender
        # (Lambda DeadLetterConfig): cdk-nag sees the latter, so AwsSolutions-SQS3 needs no acknowledgement.
        self.retry_dlq = _queue(self, "RetryDlq", retention_period=Duration.days(14))
        self.retry_queue = _queue(
            self,
            "RetryQueue",
            visibility_timeout=Duration.seconds(SENDER_TIMEOUT_SECONDS * VISIBILITY_FACTOR),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.retry_dlq, max_receive_count=config.max_receive_count),
        )
        self.function = functions.make(
            self,
            "Sender",
            handler="webhooks",
            env={
                **storage.environment(),
                "retry_queue_url": self.retry_queue.queue_url,
                # Receivers get a download link to the result.
                "api_base_url": api_url,
            },
            timeout=Duration.seconds(SENDER_TIMEOUT_SECONDS),
            memory=256,
            # Without it Lambda drops an event the sender failed on 3 times: the receivers would never hear.
            dead_letter_queue=self.dlq,
        )
        self.function.add_event_source(
            sources.SqsEventSource(
                self.retry_queue, batch_size=RETRY_BATCH_SIZE, max_concurrency=5, report_batch_item_failures=True
            )
        )
        self.rule = events.Rule(
            self,
            "JobEvents",
            event_bus=bus,
            event_pattern=events.EventPattern(
                source=[EVENT_SOURCE], detail_type=events.Match.prefix(DETAIL_TYPE_PREFIX)
            ),
            targets=[
                targets.LambdaFunction(
                    self.function, dead_letter_queue=self.dlq, retry_attempts=8, max_event_age=Duration.hours(24)
                )
            ],
        )
        # No on-failure destination besides the dead-letter queue: with both, Lambda sends a failed event to each.
        self.function.configure_async_invoke(retry_attempts=ASYNC_RETRIES, max_event_age=ASYNC_MAX_EVENT_AGE)
        # Endpoints (get, list active, disable on 410) and one delivery item per event and endpoint.
        storage.grant_jobs(self.function, "GetItem", "PutItem", "UpdateItem", "Query")
        self.retry_queue.grant(self.function, "sqs:SendMessage")
