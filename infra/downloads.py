"""Result variants: the api function queues a build, the variants function streams it next to the result.

`GET /api/bulk-jobs/download` with `status`, `format` or `delimiter` asks for a variant of a result (only some row
statuses, another delimiter, JSON Lines). A variant is built once, by streaming the result (a million rows take
seconds, far more than an API request may), so the api function records the request and sends a message here;
the variants function builds the file into `results/<account>/<job>/` and records it ready. Until then the download
answers 202 with Retry-After. A queue rather than an asynchronous invocation: retries, a dead-letter queue and the
local runtime's poller come with it (moto runs an asynchronous invocation inside the caller's request).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from constructs import Construct

from infra.config import StackConfig
from infra.functions import FunctionFactory
from infra.pipeline import VISIBILITY_FACTOR
from infra.queues import queue_with_dlq
from infra.storage import StorageConstruct

BUILD_TIMEOUT = Duration.minutes(15)


class DownloadsConstruct(Construct):
    """The variant build queue (+ DLQ) and the variants function."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        functions: FunctionFactory,
        storage: StorageConstruct,
    ) -> None:
        super().__init__(scope, construct_id)
        visibility = Duration.seconds(BUILD_TIMEOUT.to_seconds() * VISIBILITY_FACTOR)
        self.queue, self.dlq = queue_with_dlq(
            self, "Variant", visibility=visibility, retention=Duration.days(1), max_receives=config.max_receive_count
        )
        self.function = functions.make(
            self,
            "Variants",
            handler="variants",
            env={"jobs_table": storage.table.table_name, "bucket": storage.bucket.bucket_name},
            timeout=BUILD_TIMEOUT,
            # 1,769 MB is one full vCPU: a build is csv parsing and writing, single-threaded.
            memory=1769,
        )
        # A workbook (format=xlsx) is written in constant memory: its sheet's XML goes to /tmp until it is zipped,
        # about 60 bytes a cell (a 1,000,000-row result of 15 columns: ~0.9 GB), past the default 512 MB.
        self.function.node.default_child.add_property_override("EphemeralStorage.Size", 4096)  # type: ignore[union-attr]
        self.function.add_event_source(
            sources.SqsEventSource(self.queue, batch_size=1, max_concurrency=2, report_batch_item_failures=True)
        )
        # Reads the result, writes the variant (multipart when large, aborted on failure, deleted again when the
        # job was purged meanwhile); reads the job and its variant record, records the variant ready (a
        # transaction that checks the job item).
        storage.grant_objects(
            self.function,
            "results/",
            "GetObject",
            "PutObject",
            "AbortMultipartUpload",
            "DeleteObjectVersion",
        )
        storage.grant_list_versions(self.function, "results/")
        storage.grant_jobs(self.function, "GetItem", "PutItem", "ConditionCheckItem")

    @property
    def functions(self) -> list[lambda_.Function]:
        """The construct's functions."""
        return [self.function]
