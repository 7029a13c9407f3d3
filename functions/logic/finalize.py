"""The finalizer's tasks: assemble the result in input order, end the job, settle credits, announce it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from functions.enrich import result_columns
from functions.errors import NotFoundError
from functions.logic import results
from functions.logic.bucket_keys import part_key, parts_prefix, result_key
from functions.logic.clock import utcnow
from functions.logic.job_views import offers_result
from functions.logic.ports import EventPort, FinalBlobPort, FinalStorePort, SettlePort
from functions.logic.summary import Tally
from functions.models import Job, JobEvent, JobStatus
from functions.observability import logger


def _job(store: FinalStorePort, job_id: str) -> Job:
    job = store.get_job(job_id)
    if job is None:
        raise NotFoundError(f"no job {job_id}", code="job_not_found")
    return job


def assemble_result(job_id: str, *, store: FinalStorePort, blobs: FinalBlobPort) -> dict[str, Any]:
    """The counted batches' parts, in batch order, as results/...: an S3 multipart upload built from the part files
    (never the whole result in memory). Idempotent: a result already recorded is kept as it is."""
    job = _job(store, job_id)
    key = result_key(job)
    done = sorted(job.done_batches)
    if job.result_key == key and blobs.head(key) is not None:
        return {"job_id": job_id, "result_key": key, "batches": len(done)}
    columns = result_columns(job.type)
    header_source = job.header or ["value"]
    n_added = len(columns) + len(results.TRAILER)
    width = max(len(header_source), job.max_width)
    if not job.max_width:  # the split did not finish (cancelled early): learn the widest row from the parts
        width = max(width, _widest(blobs, job, done, n_added))
    header = results.result_header(header_source, width, columns, job.type)
    delimiter = job.delimiter or ","
    tally = Tally(job.type)

    def observe(part: str, data: bytes | None) -> None:
        # A part large enough for S3 to copy it never passes through the writer: read it for the count.
        tally.add_part(data if data is not None else b"".join(blobs.stream(part)), delimiter)

    def counted(n: int) -> Iterator[bytes]:
        data = b"".join(blobs.stream(part_key(job_id, n)))
        tally.add_part(data, delimiter)
        yield data

    writer = blobs.writer(key)
    try:
        writer.write(results.header_bytes(header, delimiter))
        if width <= len(header_source):
            # Parts are written final (escaped, padded to the header, in the result's delimiter): the result is
            # their concatenation.
            writer.append_objects((part_key(job_id, n) for n in done), observe)
        else:
            for chunk in results.repadded(width, n_added, (counted(n) for n in done), delimiter):
                writer.write(chunk)
        writer.close()
    except Exception:
        writer.abort()
        raise
    store.record_result(job_id, key, job.processed, utcnow(), tally.summary())
    logger.info("result assembled", job_id=job_id, batches=len(done), rows=job.processed)
    return {"job_id": job_id, "result_key": key, "batches": len(done)}


def delete_parts(job_id: str, blobs: FinalBlobPort) -> None:
    """Delete a job's part files for good once it has ended (its result, if any, is assembled by then).

    Never fails the step that calls it (a retried step would publish its event again): parts left behind expire
    with the staging lifecycle rule.
    """
    try:
        deleted = blobs.purge(parts_prefix(job_id))
    except Exception:
        logger.exception("parts not deleted; the staging lifecycle rule will", job_id=job_id)
        return
    logger.info("parts deleted", job_id=job_id, objects=deleted)


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


def complete_job(
    job_id: str,
    *,
    store: FinalStorePort,
    credits: SettlePort,
    events: EventPort,
    bucket: str,
    blobs: FinalBlobPort | None = None,
) -> dict[str, Any]:
    """Refund unused credits once, then processing -> completed (cancelled and failed stay as they are), publish,
    and delete the part files (the last step: every step before it may still read them).

    The refund comes first so that a client who sees `completed` also sees its final balance.
    """
    job = store.get_job(job_id)
    if job is None:
        return _deleted(job_id)
    if credits.settle_credits(job, utcnow()):
        logger.info("credits settled", job_id=job_id, used=job.credits_used, reserved=job.credits_reserved)
    # The update returns the job as it now is; a cancelled (or failed) job is not moved and is read instead.
    current = store.set_status(job_id, JobStatus.COMPLETED, only_from=("processing",), now=utcnow())
    current = current or store.get_job(job_id)
    if current is None:
        return _deleted(job_id)
    publish(current, events, bucket)
    if blobs is not None:
        delete_parts(job_id, blobs)
    return {"job_id": job_id, "status": current.status.value, "credits_used": current.credits_used}


def fail_job(
    job_id: str,
    error: str,
    message: str,
    *,
    store: FinalStorePort,
    credits: SettlePort,
    events: EventPort,
    bucket: str,
    blobs: FinalBlobPort | None = None,
) -> dict[str, Any]:
    """The catch path: the job ends failed with a code, unused credits are refunded once, the event goes out."""
    moved = store.set_status(
        job_id,
        JobStatus.FAILED,
        only_from=("awaiting_upload", "queued", "processing"),
        now=utcnow(),
        error=error,
        error_message=message,
    )
    job = moved or store.get_job(job_id)
    if job is None:
        return _deleted(job_id)
    credits.settle_credits(job, utcnow())
    publish(job, events, bucket)
    if blobs is not None:
        delete_parts(job_id, blobs)
    return {"job_id": job_id, "status": job.status.value}


def publish(job: Job, events: EventPort, bucket: str) -> None:
    """`bulk_job.<status>` on the bus; its id fields let consumers drop a duplicate."""
    offered = offers_result(job)
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
        duplicates=job.duplicates,
        result_bucket=bucket if offered else None,
        result_key=job.result_key if offered else None,
        error=job.error,
        completed_at=job.completed_at,
        summary=job.summary if offered else None,
    )
    events.put(f"bulk_job.{job.status.value}", event.model_dump(mode="json"))
