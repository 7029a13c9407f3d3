"""SQS fetch requests -> the job's file, fetched from its URL into the bucket (its S3 event then starts the split)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from functions.adapters.blobs import BlobStore
from functions.adapters.fetch_slots import FetchSlots
from functions.adapters.jobs import JobStore
from functions.adapters.messaging import FetchQueue, FinalizerStarter
from functions.adapters.remote_file import RemoteFiles
from functions.composition import Function, Handler, sqs_handler
from functions.logic.fetching import fetch_job
from functions.logic.ports import FetchPort, FetchRequestPort, FetchSlotsPort, FetchStorePort, FinalizerPort
from functions.observability import logger, metrics
from functions.settings import FetcherSettings


@dataclass(frozen=True)
class Deps:
    """What the fetcher needs, built once per cold start."""

    store: FetchStorePort
    fetcher: FetchPort
    finalizer: FinalizerPort
    max_bytes: int
    slots: FetchSlotsPort
    queue: FetchRequestPort
    slot_wait_seconds: int
    # The longest a fetch can run (its deadline, and a minute to store it): a slot, or a fetch's claim on its job,
    # lapses after this should the fetcher die holding it.
    lease_seconds: float

    @classmethod
    def from_settings(cls, settings: FetcherSettings) -> Deps:
        """The real adapters."""
        lease = settings.fetch_timeout_seconds + 60
        return cls(
            store=JobStore(settings.jobs_table),
            fetcher=RemoteFiles(
                BlobStore(settings.bucket),
                allow_private=settings.allow_private_targets,
                timeout_seconds=settings.fetch_timeout_seconds,
            ),
            finalizer=FinalizerStarter(settings.finalizer_arn),
            max_bytes=settings.max_upload_object_bytes,
            slots=FetchSlots(settings.jobs_table, per_account=settings.fetch_slots_per_account, hold_seconds=lease),
            queue=FetchQueue(settings.fetch_queue_url),
            slot_wait_seconds=settings.fetch_slot_wait_seconds,
            lease_seconds=lease,
        )


def handler_for(deps: Deps) -> Handler:
    """The fetcher composed with its dependencies."""

    def record_handler(record: SQSRecord) -> None:
        # One message = one job's fetch; raising (an AWS call failed) leaves it to the queue to retry.
        job_id = str(json.loads(record.body)["job_id"])
        logger.append_keys(job_id=job_id)
        outcome = fetch_job(
            job_id,
            store=deps.store,
            fetcher=deps.fetcher,
            finalizer=deps.finalizer,
            max_bytes=deps.max_bytes,
            slots=deps.slots,
            queue=deps.queue,
            slot_wait_seconds=deps.slot_wait_seconds,
            lease_seconds=deps.lease_seconds,
        )
        if outcome not in ("skipped", "deferred", "running"):
            metrics.add_metric(name="FilesFetched" if outcome == "fetched" else "FetchesFailed", unit="Count", value=1)

    return sqs_handler(record_handler)


lambda_handler = Function(FetcherSettings, Deps.from_settings, handler_for)
