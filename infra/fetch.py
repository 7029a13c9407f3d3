"""Files the service fetches from a URL: a fetch queue (+ DLQ) and the fetcher function (functions/handlers/fetcher.py).

The fetch is a function of its own, not a step of the API or the splitter:
- it is the only code that connects to hosts a customer named with a body it stores, so it gets the least: PutObject
  under uploads/, the job item, and the finalizer's start (to end a job whose fetch failed); nothing that queues work;
- its time is a download's (up to `maxUploadObjectBytes` within `fetch_timeout_seconds`, 10 minutes), which must not
  eat into the API's 29 s or the splitter's budget;
- the splitter keeps one trigger and one job: every file, however it arrived, lands under uploads/ and is split by the
  same S3 event;
- a fetch that crashes is retried by its queue; one that fails for a reason the customer must fix ends the job
  `failed` with `fetch_blocked`, `fetch_too_large` or `fetch_failed`, and the sweeper ends a job whose fetch never
  finished.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import StackConfig
from infra.functions import FunctionFactory
from infra.queues import queue_with_dlq
from infra.storage import StorageConstruct

FETCH_TIMEOUT = Duration.minutes(15)
# A crashed fetch is tried again once more; the sweeper ends the job if that fails too.
FETCH_RECEIVES = 2
VISIBILITY_FACTOR = 6


class FetchConstruct(Construct):
    """The fetch queue, its DLQ, and the fetcher."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        functions: FunctionFactory,
        storage: StorageConstruct,
        state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        visibility = Duration.seconds(FETCH_TIMEOUT.to_seconds() * VISIBILITY_FACTOR)
        self.queue, self.dlq = queue_with_dlq(
            self, "Fetch", visibility=visibility, retention=Duration.days(1), max_receives=FETCH_RECEIVES
        )
        self.function = functions.make(
            self,
            "Fetcher",
            handler="fetcher",
            env={
                "jobs_table": storage.table.table_name,
                "bucket": storage.bucket.bucket_name,
                "finalizer_arn": state_machine.state_machine_arn,
                "max_upload_object_bytes": str(config.max_upload_object_bytes),
            },
            timeout=FETCH_TIMEOUT,
            # Streams through an 8 MiB multipart buffer: memory does not grow with the file.
            memory=512,
        )
        self.function.add_event_source(
            sources.SqsEventSource(self.queue, batch_size=1, max_concurrency=5, report_batch_item_failures=True)
        )
        # Writes the fetched file where the splitter's S3 event picks it up (multipart, aborted on failure);
        # reads the job, ends it `failed` when the fetch fails, and starts the finalizer to announce it.
        storage.grant_objects(self.function, "uploads/", "PutObject", "AbortMultipartUpload")
        storage.grant_jobs(self.function, "GetItem", "UpdateItem")
        state_machine.grant_start_execution(self.function)
