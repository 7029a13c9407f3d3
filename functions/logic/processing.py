"""The worker's logic: enrich one batch, write its part file, count it once, start the finalizer after the last."""

from __future__ import annotations

from typing import Protocol

from functions.enrich import enrich_values, result_columns
from functions.enrich.online import OFFLINE, Sources
from functions.logic import results
from functions.logic.jobs import FinalizerPort
from functions.models import Batch, BatchCounts, Job, JobStatus, RowResult
from functions.observability import logger


class WorkStorePort(Protocol):
    """The jobs-table operations a worker needs."""

    def get_job(self, job_id: str) -> Job | None: ...
    def commit_batch(self, job_id: str, batch: int, counts: BatchCounts) -> Job | None: ...


class PartBlobPort(Protocol):
    """Writes part files."""

    def put(
        self, key: str, body: bytes, *, content_type: str = "text/csv", metadata: dict[str, str] | None = None
    ) -> None: ...


def part_key(job_id: str, batch: int) -> str:
    """Where a batch's enriched rows are kept until the finalizer assembles them."""
    return f"parts/{job_id}/{batch:06d}.csv"


def count(row_results: list[RowResult]) -> BatchCounts:
    """Counters for a batch: ok rows cost one credit each, invalid and error rows nothing."""
    ok = sum(1 for r in row_results if r.status == "ok")
    invalid = sum(1 for r in row_results if r.status == "invalid")
    return BatchCounts(
        processed=len(row_results), succeeded=ok, invalid=invalid, failed=len(row_results) - ok - invalid, credits=ok
    )


def _finish_if_last(job: Job, finalizer: FinalizerPort) -> None:
    if job.total_batches is not None and job.batches_done >= job.total_batches:
        finalizer.start(job.id)


def _commit(
    batch: Batch,
    row_results: list[RowResult],
    job: Job,
    store: WorkStorePort,
    blobs: PartBlobPort,
    finalizer: FinalizerPort,
) -> bool:
    body = results.part_rows(batch.rows, row_results, result_columns(job.type), len(batch.header))
    blobs.put(part_key(batch.job_id, batch.batch), body)
    updated = store.commit_batch(batch.job_id, batch.batch, count(row_results))
    if updated is None:
        # Already counted (a redelivery) or the job stopped meanwhile: re-check completion, in case the first
        # delivery counted the last batch and crashed before it could start the finalizer.
        current = store.get_job(batch.job_id)
        if current is not None and current.status == JobStatus.PROCESSING:
            _finish_if_last(current, finalizer)
        return False
    _finish_if_last(updated, finalizer)
    return True


def process_batch(
    batch: Batch,
    *,
    store: WorkStorePort,
    blobs: PartBlobPort,
    finalizer: FinalizerPort,
    sources: Sources = OFFLINE,
) -> bool:
    """Enrich and count a batch; False when it was skipped (job cancelled/ended, or already counted)."""
    job = store.get_job(batch.job_id)
    if job is None or job.status != JobStatus.PROCESSING:
        logger.info("batch skipped", job_id=batch.job_id, batch=batch.batch, status=job.status if job else None)
        return False
    values = [row[batch.column_index] if batch.column_index < len(row) else "" for row in batch.rows]
    row_results = enrich_values(job.type, values, sources)
    return _commit(batch, row_results, job, store, blobs, finalizer)


def dead_letter_batch(
    batch: Batch, reason: str, *, store: WorkStorePort, blobs: PartBlobPort, finalizer: FinalizerPort
) -> bool:
    """A batch that exhausted its retries: its rows enter the result as errors, counted failed and not charged."""
    job = store.get_job(batch.job_id)
    if job is None or job.status != JobStatus.PROCESSING:
        return False
    row_results = [RowResult(status="error", error=reason) for _ in batch.rows]
    logger.warning("batch dead-lettered", job_id=batch.job_id, batch=batch.batch, rows=len(batch.rows))
    return _commit(batch, row_results, job, store, blobs, finalizer)
