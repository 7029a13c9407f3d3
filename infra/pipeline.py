"""The pipeline: S3 ObjectCreated -> splitter -> SQS work queue (+ DLQ) -> worker; DLQ -> dead-letter handler."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from functions.settings import SplitterSettings, WorkerSettings
from infra.config import StackConfig
from infra.functions import make_function
from infra.storage import StorageConstruct

# SQS redelivers a message still being worked on once its visibility timeout passes; AWS advises >= 6x the
# function timeout so a throttled, retried invocation does not see its own message twice.
VISIBILITY_FACTOR = 6


class PipelineConstruct(Construct):
    """Splitter, work queue, worker and the dead-letter path."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        storage: StorageConstruct,
        state_machine: sfn.IStateMachine,
        bus: events.IEventBus,
    ) -> None:
        super().__init__(scope, construct_id)
        worker_timeout = Duration.seconds(config.worker_timeout_seconds)
        self.dlq = sqs.Queue(
            self, "WorkDlq", retention_period=Duration.days(14), encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        self.queue = sqs.Queue(
            self,
            "WorkQueue",
            visibility_timeout=Duration.seconds(config.worker_timeout_seconds * VISIBILITY_FACTOR),
            retention_period=Duration.days(4),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=config.max_receive_count),
        )
        common = {"jobs_table": storage.table.table_name, "bucket": storage.bucket.bucket_name,
                  "finalizer_arn": state_machine.state_machine_arn}
        self.splitter = make_function(
            self,
            "Splitter",
            handler="splitter",
            settings=SplitterSettings,
            env={
                **common,
                "work_queue_url": self.queue.queue_url,
                "event_bus_name": bus.event_bus_name,
                "max_rows_per_job": str(config.max_rows_per_job),
                "max_upload_bytes": str(config.max_upload_bytes),
                "rows_per_batch": str(config.rows_per_batch),
            },
            timeout=Duration.minutes(15),
            memory=1024,
            log_retention_days=config.log_retention_days,
        )
        self.worker = make_function(
            self, "Worker", handler="worker", settings=WorkerSettings, env=common, timeout=worker_timeout,
            memory=1024, log_retention_days=config.log_retention_days,
        )
        self.dead_letter = make_function(
            self, "DeadLetter", handler="dead_letter", settings=WorkerSettings, env=common, timeout=worker_timeout,
            memory=512, log_retention_days=config.log_retention_days,
        )
        for prefix in ("uploads/", "drop/"):
            storage.bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED, s3n.LambdaDestination(self.splitter), s3.NotificationKeyFilter(prefix=prefix)
            )
        self.worker.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=config.worker_batch_size,
                max_concurrency=config.worker_max_concurrency,
                report_batch_item_failures=True,
            )
        )
        self.dead_letter.add_event_source(
            sources.SqsEventSource(self.dlq, batch_size=1, max_concurrency=2, report_batch_item_failures=True)
        )
        storage.table.grant_read_write_data(self.splitter)
        storage.bucket.grant_read(self.splitter)
        storage.bucket.grant_put(self.splitter, "rejected/*")
        storage.bucket.grant_delete(self.splitter, "drop/*")
        self.queue.grant_send_messages(self.splitter)
        bus.grant_put_events_to(self.splitter)
        for fn in (self.worker, self.dead_letter):
            storage.table.grant_read_write_data(fn)
            storage.bucket.grant_put(fn, "parts/*")
            state_machine.grant_start_execution(fn)
        state_machine.grant_start_execution(self.splitter)

    @property
    def functions(self) -> list[lambda_.Function]:
        """The pipeline's functions."""
        return [self.splitter, self.worker, self.dead_letter]
