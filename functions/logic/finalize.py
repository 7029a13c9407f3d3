"""The finalizer's tasks: assemble the result in input order, end the job, settle credits, announce it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any, Protocol

from functions.enrich import result_columns
from functions.errors import NotFoundError
from functions.logic import results
from functions.logic.jobs import StatusPort, utcnow
from functions.logic.processing import part_key
from functions.models import Job, JobEvent, JobStatus
from functions.observability import logger


class FinalStorePort(StatusPort, Protocol):
    """The jobs-table operations the finalizer needs."""

    def record_result(self, job_id: str, result_key: str, result_rows: int, now: str) -> Job: ...
    def settle_credits(self, job: Job, now: str) -> bool: ...


class Writer(Protocol):
    """A streaming object writer."""

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


class FinalBlobPort(Protocol):
    """The bucket operations the finalizer needs."""

    bucket: str

    def stream(self, key: str) -> Iterator[bytes]: ...
    def writer(self, key: str, content_type: str = "text/csv") -> Writer: ...


class EventPort(Protocol):
    """Publishes events."""

    def put(self, detail_type: str, detail: dict[str, Any]) -> None: ...


def result_key(job: Job) -> str:
    """Where the result CSV of a job lives."""
    return f"results/{job.account_id}/{job.id}.csv"


def _job(store: FinalStorePort, job_id: str) -> Job:
    job = store.get_job(job_id)
    if job is None:
        raise NotFoundError(f"no job {job_id}", code="job_not_found")
    return job


def assemble_result(job_id: str, *, store: FinalStorePort, blobs: FinalBlobPort) -> dict[str, Any]:
    """Concatenate the counted batches' parts, in batch order, into results/...; idempotent (same bytes again)."""
    job = _job(store, job_id)
    done = sorted(job.done_batches)
    columns = result_columns(job.type)
    header_source = job.header or ["value"]
    width = max(len(header_source), job.max_width)
    if not job.max_width:  # the split did not finish (cancelled early): learn the widest row from the parts
        width = max(width, _widest(blobs, job, done, len(columns) + len(results.TRAILER)))
    header = results.result_header(header_source, width, columns, job.type)
    n_added = len(columns) + len(results.TRAILER)
    key = result_key(job)
    writer = blobs.writer(key)
    try:
        parts = (blobs.stream(part_key(job_id, n)) for n in done)
        for chunk in results.assemble(header, width, len(header_source), n_added, parts, job.delimiter or ","):
            writer.write(chunk)
        writer.close()
    except Exception:
        writer.abort()
        raise
    store.record_result(job_id, key, job.processed, utcnow())
    logger.info("result assembled", job_id=job_id, batches=len(done), rows=job.processed)
    return {"job_id": job_id, "result_key": key, "batches": len(done)}


def _widest(blobs: FinalBlobPort, job: Job, done: list[int], n_added: int) -> int:
    widest = 0
    for n in done:
        text = b"".join(blobs.stream(part_key(job.id, n))).decode("utf-8")
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=job.delimiter or ","):
            widest = max(widest, len(row) - n_added)
    return widest


def _deleted(job_id: str) -> dict[str, Any]:
    # An ended, settled job may be purged by its owner while a retried task still runs: nothing is left to do.
    logger.info("job deleted before its event", job_id=job_id)
    return {"job_id": job_id, "status": "deleted", "credits_used": 0}


def complete_job(job_id: str, *, store: FinalStorePort, events: EventPort, bucket: str) -> dict[str, Any]:
    """Refund unused credits once, then processing -> completed (cancelled and failed stay as they are), publish.

    The refund comes first so that a client who sees `completed` also sees its final balance.
    """
    job = store.get_job(job_id)
    if job is None:
        return _deleted(job_id)
    if store.settle_credits(job, utcnow()):
        logger.info("credits settled", job_id=job_id, used=job.credits_used, reserved=job.credits_reserved)
    # The update returns the job as it now is; a cancelled (or failed) job is not moved and is read instead.
    current = store.set_status(job_id, JobStatus.COMPLETED, only_from=("processing",), now=utcnow())
    current = current or store.get_job(job_id)
    if current is None:
        return _deleted(job_id)
    publish(current, events, bucket)
    return {"job_id": job_id, "status": current.status.value, "credits_used": current.credits_used}


def fail_job(
    job_id: str, error: str, message: str, *, store: FinalStorePort, events: EventPort, bucket: str
) -> dict[str, Any]:
    """The catch path: the job ends failed with a code, unused credits are refunded once, the event goes out."""
    moved = store.set_status(
        job_id, JobStatus.FAILED, only_from=("queued", "processing"), now=utcnow(), error=error, error_message=message
    )
    job = moved or store.get_job(job_id)
    if job is None:
        return _deleted(job_id)
    store.settle_credits(job, utcnow())
    publish(job, events, bucket)
    return {"job_id": job_id, "status": job.status.value}


def publish(job: Job, events: EventPort, bucket: str) -> None:
    """`bulk_job.<status>` on the bus; its id fields let consumers drop a duplicate."""
    event = JobEvent(
        id=job.id,
        account_id=job.account_id,
        status=job.status,
        type=job.type,
        total_rows=job.total_rows or 0,
        processed=job.processed,
        succeeded=job.succeeded,
        invalid=job.invalid,
        failed=job.failed,
        credits_used=job.credits_used,
        result_bucket=bucket if job.result_key else None,
        result_key=job.result_key,
        error=job.error,
        completed_at=job.completed_at,
    )
    events.put(f"bulk_job.{job.status.value}", event.model_dump(mode="json"))
