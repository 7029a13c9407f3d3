"""The pipeline: S3 ObjectCreated -> splitter -> SQS work queue (+ DLQ) -> worker; DLQ -> dead-letter handler."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import StackConfig
from infra.enrichment import EnrichmentConstruct, provider_budget
from infra.functions import FunctionFactory
from infra.nag import acknowledge, resource_of
from infra.queues import failure_queue, queue_with_dlq
from infra.storage import StorageConstruct

# SQS redelivers a message still being worked on once its visibility timeout passes; AWS advises >= 6x the
# function timeout so a throttled, retried invocation does not see its own message twice.
VISIBILITY_FACTOR = 6
# Prefixes whose new objects become jobs: API uploads and operators' direct drops.
SPLIT_PREFIXES = ("uploads/", "drop/")
# S3 invokes the splitter asynchronously. Lambda's default retries (2, after about 1 and 3 minutes) fit inside the
# split lease (15 min, functions/settings.py) before the sweeper fails the job; an SQS queue in between would return
# a failed event only after its visibility timeout (6 x 15 min), long after that.
ASYNC_RETRIES = 2
ASYNC_MAX_EVENT_AGE = Duration.hours(6)


class PipelineConstruct(Construct):
    """Splitter, work queue, worker and the dead-letter path."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        functions: FunctionFactory,
        storage: StorageConstruct,
        enrichment: EnrichmentConstruct,
        state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        worker_timeout = Duration.seconds(config.worker_timeout_seconds)
        visibility = Duration.seconds(config.worker_timeout_seconds * VISIBILITY_FACTOR)
        # The DLQ has a consumer too (the dead-letter handler, same timeout as the worker): same rule.
        self.queue, self.dlq = queue_with_dlq(
            self,
            "Work",
            visibility=visibility,
            retention=Duration.days(4),
            max_receives=config.max_receive_count,
            dlq_visibility=visibility,
        )
        common = storage.environment(state_machine)
        # Without a dead-letter queue Lambda drops an S3 event after its retries: the file would never become work.
        self.split_failures = failure_queue(self, "SplitFailures")
        self.splitter = functions.make(
            self,
            "Splitter",
            handler="splitter",
            env={
                **common,
                "work_queue_url": self.queue.queue_url,
                "max_rows_per_job": str(config.max_rows_per_job),
                "max_upload_bytes": str(config.max_upload_bytes),
                "rows_per_batch": str(config.rows_per_batch),
                "phone_default_region": config.phone_default_region,
            },
            timeout=Duration.minutes(15),
            memory=1024,
            dead_letter_queue=self.split_failures,
        )
        enriching = {**common, **enrichment.settings(provider_budget(config)), "work_queue_url": self.queue.queue_url}
        self.worker = functions.make(
            self, "Worker", handler="worker", env=enriching, timeout=worker_timeout, memory=1024
        )
        self.dead_letter = functions.make(
            self, "DeadLetter", handler="dead_letter", env=enriching, timeout=worker_timeout, memory=512
        )
        # Only the worker enriches (and sends a batch back when a provider's budget ran out); the dead-letter
        # handler shares its settings model but calls no provider.
        enrichment.grant(self.worker)
        self.queue.grant(self.worker, "sqs:SendMessage")
        for prefix in SPLIT_PREFIXES:
            storage.bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED,
                s3n.LambdaDestination(self.splitter),
                s3.NotificationKeyFilter(prefix=prefix),
            )
        self._acknowledge_notifications_handler()
        # No on-failure destination besides the dead-letter queue: with both, Lambda sends a failed event to each.
        self.splitter.configure_async_invoke(retry_attempts=ASYNC_RETRIES, max_event_age=ASYNC_MAX_EVENT_AGE)
        self.worker.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=config.worker_batch_size,
                max_concurrency=config.worker_max_concurrency,
                report_batch_item_failures=True,
            )
        )
        # The dead-letter handler counts an exhausted batch's rows as failed, so no job waits forever for it.
        self.dead_letter.add_event_source(
            sources.SqsEventSource(self.dlq, batch_size=1, max_concurrency=2, report_batch_item_failures=True)
        )
        self._grant(storage, state_machine)

    def _grant(self, storage: StorageConstruct, state_machine: sfn.IStateMachine) -> None:
        # The splitter reads what arrives, moves unusable drops to rejected/ (copy + delete) and creates the
        # job item of a dropped file; it queues work and may start the finalizer of an empty job (which publishes the
        # job's event: the splitter never puts events, so it may not).
        # An upload whose job is gone (a form sent again after the job was purged) is deleted with its versions.
        storage.grant_objects(self.splitter, "uploads/", "GetObject", "DeleteObjectVersion")
        storage.grant_list_versions(self.splitter, "uploads/")
        storage.grant_objects(self.splitter, "drop/", "GetObject", "DeleteObject")
        storage.grant_objects(self.splitter, "rejected/", "PutObject")
        storage.grant_jobs(self.splitter, "GetItem", "PutItem", "UpdateItem")
        self.queue.grant(self.splitter, "sqs:SendMessage")
        state_machine.grant_start_execution(self.splitter)
        # Workers write their batch's part file and count the batch; the last one starts the finalizer.
        # They read nothing from the bucket.
        for fn in (self.worker, self.dead_letter):
            storage.grant_objects(fn, "parts/", "PutObject")
            storage.grant_jobs(fn, "GetItem", "UpdateItem")
            state_machine.grant_start_execution(fn)

    def _acknowledge_notifications_handler(self) -> None:
        # add_event_notification puts CDK's own singleton function (it calls PutBucketNotificationConfiguration
        # at deploy time) at the stack's top level.
        stack = Stack.of(self)
        for child in stack.node.children:
            role = child.node.try_find_child("Role") if child.node.id.startswith("BucketNotificationsHandler") else None
            if role is not None:
                acknowledge(
                    resource_of(role),
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole]",
                    "CDK's bucket-notifications custom resource handler: it runs only during deployments, its role "
                    "is built by CDK, and the managed policy only lets it write its own logs.",
                )

    @property
    def functions(self) -> list[lambda_.Function]:
        """The pipeline's functions."""
        return [self.splitter, self.worker, self.dead_letter]
