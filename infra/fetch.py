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
  finished (timed from the fetch's start, not the job's creation);
- `bulkapi:fetchConcurrency` fetches run at once, at most `bulkapi:fetchConcurrencyPerAccount` of them for one account:
  a fetch that finds its account's share taken goes back to the queue for SLOT_WAIT_SECONDS.
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
FETCH_RETENTION = Duration.days(1)
# How long a fetch that does not find a free slot of its account waits before it asks again.
SLOT_WAIT_SECONDS = 30


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
            self, "Fetch", visibility=visibility, retention=FETCH_RETENTION, max_receives=FETCH_RECEIVES
        )
        # What the sweeper allows a URL job (functions/logic/sweeper.py): waiting for a slot as long as its fetch
        # request lives, and a started fetch its time limit plus the wait before a crashed one is tried again.
        self.wait_seconds = int(FETCH_RETENTION.to_seconds())
        self.lease_seconds = int(FETCH_TIMEOUT.to_seconds() + visibility.to_seconds())
        self.function = functions.make(
            self,
            "Fetcher",
            handler="fetcher",
            env={
                "jobs_table": storage.table.table_name,
                "bucket": storage.bucket.bucket_name,
                "finalizer_arn": state_machine.state_machine_arn,
                "max_upload_object_bytes": str(config.max_upload_object_bytes),
                "fetch_queue_url": self.queue.queue_url,
                "fetch_slots_per_account": str(config.fetch_concurrency_per_account),
                "fetch_slot_wait_seconds": str(SLOT_WAIT_SECONDS),
            },
            timeout=FETCH_TIMEOUT,
            # Streams through an 8 MiB multipart buffer: memory does not grow with the file.
            memory=512,
        )
        self.function.add_event_source(
            sources.SqsEventSource(
                self.queue, batch_size=1, max_concurrency=config.fetch_concurrency, report_batch_item_failures=True
            )
        )
        # Writes the fetched file where the splitter's S3 event picks it up (multipart, aborted on failure);
        # reads the job, ends it `failed` when the fetch fails, and starts the finalizer to announce it.
        storage.grant_objects(self.function, "uploads/", "PutObject", "AbortMultipartUpload")
        # PutItem: the account's fetch slots (functions/adapters/fetch_slots.py); SendMessage: a fetch whose account
        # holds all its slots goes back to the queue for later.
        storage.grant_jobs(self.function, "GetItem", "UpdateItem", "PutItem")
        self.queue.grant_send_messages(self.function)
        state_machine.grant_start_execution(self.function)
