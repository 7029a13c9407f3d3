"""Events: the bus that carries bulk_job.* and the rule that drives the webhook sender."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct


class EventsConstruct(Construct):
    """The bus exists before the functions that publish to it; the rule is attached once the sender exists."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus")
        self.target_dlq = sqs.Queue(
            self, "WebhookTargetDlq", retention_period=Duration.days(14), encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )

    def route_job_events(self, sender: lambda_.IFunction) -> events.Rule:
        """bulk_job.* from this project -> the webhook sender (retried by EventBridge, then its DLQ)."""
        return events.Rule(
            self,
            "JobEvents",
            event_bus=self.bus,
            event_pattern=events.EventPattern(source=["bulkapi"], detail_type=events.Match.prefix("bulk_job.")),
            targets=[
                targets.LambdaFunction(
                    sender, dead_letter_queue=self.target_dlq, retry_attempts=8, max_event_age=Duration.hours(24)
                )
            ],
        )
