"""The worker's logic: enrich one batch, write its part file, count it once, start the finalizer after the last."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from functions.enrich import countries, enrich_values, result_columns
from functions.enrich.online import OFFLINE, Sources, count_unasked, settle_unasked
from functions.logic import results
from functions.logic.bucket_keys import part_key
from functions.logic.ports import FinalizerPort, PartBlobPort, RequeuePort, WorkStorePort
from functions.models import Batch, BatchCounts, Job, JobStatus, RowResult
from functions.observability import logger

# Turns in a row in which a deferred batch asked nothing new before it is counted with what it has.
MAX_STALLS = 3
# How long a worker goes on from its last commit of a job without reading the job before each batch.
TRUST_SECONDS = 5.0


class RecentJobs:
    """The jobs this worker process counted a batch of in the last TRUST_SECONDS, as read before their first batch.

    A job's type, layout and options never change, and each commit's condition proves the job was still processing,
    so the next batch of the job needs no read of its own (a consistent read of the whole item, markers and all, per
    batch was a third of a job's DynamoDB requests). What that read also guarded is kept another way: a cancel is
    still seen by the commit (the batch in hand is not counted and the next one reads), and a part file already
    counted is never overwritten (trusted batches write theirs only where none is: `put_new`).
    """

    # The wall clock, not the monotonic one: a Lambda environment frozen between invocations may not see the
    # monotonic clock move, and a job last counted an hour ago must be read again.
    def __init__(self, clock: Callable[[], float] = time.time, size: int = 64) -> None:
        self.clock = clock
        self.size = size
        self._jobs: OrderedDict[str, tuple[float, Job]] = OrderedDict()

    def get(self, job_id: str) -> Job | None:
        """The job as read before, if one of its batches was counted here lately."""
        entry = self._jobs.get(job_id)
        if entry is None or self.clock() - entry[0] > TRUST_SECONDS:
            return None
        return entry[1]

    def counted(self, job: Job) -> None:
        """A batch of `job` was counted just now: the job was processing."""
        self._jobs[job.id] = (self.clock(), job)
        self._jobs.move_to_end(job.id)
        while len(self._jobs) > self.size:
            self._jobs.popitem(last=False)

    def forget(self, job_id: str) -> None:
        """The job is no longer known to be processing."""
        self._jobs.pop(job_id, None)


def count(row_results: list[RowResult]) -> BatchCounts:
    """Counters for a batch: ok rows cost one credit each, except a repeat of an earlier row's value; invalid and
    error rows nothing."""
    ok = sum(1 for r in row_results if r.status == "ok")
    invalid = sum(1 for r in row_results if r.status == "invalid")
    repeats = sum(1 for r in row_results if r.duplicate_of is not None)
    charged = sum(1 for r in row_results if r.status == "ok" and r.duplicate_of is None)
    return BatchCounts(
        processed=len(row_results),
        succeeded=ok,
        invalid=invalid,
        failed=len(row_results) - ok - invalid,
        credits=charged,
        duplicates=repeats,
    )


def enrich_batch(job: Job, batch: Batch, sources: Sources) -> list[RowResult]:
    """Each row's result, a repeated value looked up once: a row whose value an earlier row of this batch had gets a
    copy of that row's result; one whose first occurrence is in an earlier batch gets the enrichment of the value the
    splitter gave (the first occurrence's, so the same enrichment; online answers come from the answer cache)."""
    repeats = {row - batch.first_row: (first, value) for row, first, value in batch.duplicates}
    asked: list[int] = []  # the rows whose (or whose first occurrence's) value is enriched here
    values: list[str] = []
    for i, row in enumerate(batch.rows):
        if i in repeats:
            first, value = repeats[i]
            if value is None:
                continue
            values.append(value)
        else:
            values.append(row[batch.column_index] if batch.column_index < len(row) else "")
        asked.append(i)
    regions = None
    if job.type == "phone":
        rows = [batch.rows[i] if i not in repeats else [] for i in asked]  # a repeat's value is E.164: no region
        regions = countries.row_regions(batch.header, rows, job.country_column, batch.column_index)
    results = enrich_values(job.type, values, sources, country=job.country, regions=regions)
    enriched = dict(zip(asked, results, strict=True))
    out: list[RowResult] = []
    for i in range(len(batch.rows)):
        if i not in repeats:
            out.append(enriched[i])
            continue
        first, _ = repeats[i]
        source = enriched[i] if i in enriched else out[first - batch.first_row]
        # Built without validation (the source was validated): a copy per repeated row, at 2 us rather than 400.
        copy = RowResult.model_construct(status=source.status, error=source.error, data=source.data)
        copy.duplicate_of = first + 1
        out.append(copy)
    return out


def _finish_if_last(job: Job, finalizer: FinalizerPort) -> None:
    if job.total_batches is not None and job.batches_done >= job.total_batches:
        finalizer.start(job.id)


def _skip_counted(batch: Batch, store: WorkStorePort, finalizer: FinalizerPort) -> bool:
    """After a commit found nothing to do: already counted (a redelivery) or the job stopped meanwhile. Re-check
    completion, in case the first delivery counted the last batch and crashed before it could start the finalizer."""
    current = store.get_job(batch.job_id)
    if current is not None and current.status == JobStatus.PROCESSING:
        _finish_if_last(current, finalizer)
    return False


def _commit(
    batch: Batch,
    row_results: list[RowResult],
    job: Job,
    store: WorkStorePort,
    blobs: PartBlobPort,
    finalizer: FinalizerPort,
    recent: RecentJobs | None = None,
    trusted: bool = False,
) -> bool:
    # Written with the input's delimiter: the result reads like the customer's own file (`;` in much of Europe).
    body = results.part_rows(batch.rows, row_results, result_columns(job.type), len(batch.header), job.delimiter or ",")
    key = part_key(batch.job_id, batch.batch)
    if not trusted:
        blobs.put(key, body)
    elif not blobs.put_new(key, body):
        # An earlier delivery of this batch wrote a part (the job was not read first): a counted part stays as it is;
        # one that was never counted is replaced by this delivery's, as after a read.
        current = store.get_job(batch.job_id)
        if current is None or current.status != JobStatus.PROCESSING or batch.batch in current.done_batches:
            if recent is not None:
                recent.forget(batch.job_id)
            return _skip_counted(batch, store, finalizer) if current is not None else False
        blobs.put(key, body)
    pending = store.commit_batch(batch.job_id, batch.batch, count(row_results))
    if pending is None:
        if recent is not None:
            recent.forget(batch.job_id)
        return _skip_counted(batch, store, finalizer)
    if recent is not None:
        recent.counted(job)
    if pending == 0:
        finalizer.start(batch.job_id)
    return True


def process_batch(
    batch: Batch,
    *,
    store: WorkStorePort,
    blobs: PartBlobPort,
    finalizer: FinalizerPort,
    sources: Sources = OFFLINE,
    requeue: RequeuePort | None = None,
    recent: RecentJobs | None = None,
) -> bool:
    """Enrich and count a batch; False when it was skipped (job cancelled/ended, already counted, or deferred).

    A provider's time budget can run out before every value of the batch was asked (a rate-limited plan, a slow
    site). Then the batch goes back to the queue instead of being counted: the answers it got are in the cache,
    so its next turn asks the values after them, at the provider's pace. A batch whose turns stop asking anything
    new (MAX_STALLS in a row) is counted as it is, the unasked values as `provider_timeout` errors (not charged).

    With `recent`, a batch of a job counted here lately is not preceded by a read of the job (RecentJobs).
    """
    # A deferred batch's turns read the job: one of them may have been counted already.
    known = recent.get(batch.job_id) if recent is not None and batch.deferrals == 0 else None
    if known is not None:
        return _enrich_and_commit(known, batch, store, blobs, finalizer, sources, requeue, recent, trusted=True)
    job = store.get_job(batch.job_id)
    if job is None or job.status != JobStatus.PROCESSING:
        logger.info("batch skipped", job_id=batch.job_id, batch=batch.batch, status=job.status if job else None)
        return False
    if batch.batch in job.done_batches:
        # A redelivery (or a second turn of a deferred batch) after the count: its part file must stay as counted.
        logger.info("batch already counted", job_id=batch.job_id, batch=batch.batch)
        _finish_if_last(job, finalizer)
        return False
    return _enrich_and_commit(job, batch, store, blobs, finalizer, sources, requeue, recent, trusted=False)


def _enrich_and_commit(
    job: Job,
    batch: Batch,
    store: WorkStorePort,
    blobs: PartBlobPort,
    finalizer: FinalizerPort,
    sources: Sources,
    requeue: RequeuePort | None,
    recent: RecentJobs | None,
    *,
    trusted: bool,
) -> bool:
    row_results = enrich_batch(job, batch, sources)
    unasked = count_unasked(row_results)
    if unasked:
        if requeue is not None and _defer(batch, unasked, store, requeue):
            return False
        row_results = settle_unasked(row_results)
    return _commit(batch, row_results, job, store, blobs, finalizer, recent, trusted)


def _defer(batch: Batch, unasked: int, store: WorkStorePort, requeue: RequeuePort) -> bool:
    stalls = batch.stalls + 1 if batch.unasked is not None and unasked >= batch.unasked else 0
    if stalls >= MAX_STALLS:
        logger.warning("deferred batch makes no progress; counted", job_id=batch.job_id, batch=batch.batch)
        return False
    again = batch.model_copy(update={"deferrals": batch.deferrals + 1, "unasked": unasked, "stalls": stalls})
    requeue.send([again.model_dump_json()])
    # The sweeper fails jobs that stop moving; a deferred batch is movement.
    store.touch_progress(batch.job_id)
    logger.info("batch deferred", job_id=batch.job_id, batch=batch.batch, unasked=unasked, turn=again.deferrals)
    return True


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
