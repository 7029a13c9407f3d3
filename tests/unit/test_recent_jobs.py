"""A worker that counted a batch of a job lately does not read the job before its next batch, and loses nothing by it:
a cancel still stops the counting, and a part already counted is never overwritten."""

from __future__ import annotations

from functions.logic.processing import TRUST_SECONDS, RecentJobs, process_batch
from functions.models import Batch, BatchCounts, Job, JobStatus
from tests.fakes import RecordingFinalizer
from tests.unit.test_deferral import Store


class ReadCountingStore(Store):
    """Jobs in memory that count the reads of a job."""

    def __init__(self, job: Job) -> None:
        super().__init__(job)
        self.reads = 0

    def get_job(self, job_id: str) -> Job | None:
        self.reads += 1
        return super().get_job(job_id)


class ConditionalParts:
    """Part files in memory, with S3's conditional write (If-None-Match: *)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def put(
        self, key: str, body: bytes, *, content_type: str = "text/csv", metadata: dict[str, str] | None = None
    ) -> None:
        self.files[key] = body

    def put_new(self, key: str, body: bytes, *, content_type: str = "text/csv") -> bool:
        if key in self.files:
            return False
        self.files[key] = body
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def email_job(batches: int) -> Job:
    return Job(
        id="job_1", account_id="acct", type="email", status=JobStatus.PROCESSING, source_key="k", created_at="t",
        total_rows=2 * batches, total_batches=batches,
    )  # fmt: skip


def worker(clock: Clock | None = None) -> tuple[ReadCountingStore, ConditionalParts, RecordingFinalizer, RecentJobs]:
    """A worker's store (a job of three batches), part files, finalizer and recent jobs."""
    recent = RecentJobs(clock=clock) if clock is not None else RecentJobs()
    return ReadCountingStore(email_job(3)), ConditionalParts(), RecordingFinalizer(), recent


def batch(number: int, domain: str = "example.com") -> Batch:
    rows = [[f"a{number}@{domain}"], [f"b{number}@{domain}"]]
    return Batch(job_id="job_1", batch=number, first_row=2 * number, column_index=0, header=["email"], rows=rows)


def test_the_batches_after_the_first_are_counted_without_reading_the_job() -> None:
    # Given a worker with its recent jobs, and a job of three batches
    store, parts, finalizer, recent = worker()
    # When it takes the three batches one after the other
    counted = [process_batch(batch(n), store=store, blobs=parts, finalizer=finalizer, recent=recent) for n in range(3)]
    # Then all three are counted, once each, with one read of the job (before the first), and the job finishes
    assert counted == [True, True, True] and store.reads == 1
    assert sorted(store.counted) == [0, 1, 2] and store.counted[2] == BatchCounts(processed=2, succeeded=2, credits=2)
    assert finalizer.started == ["job_1"]


def test_a_redelivered_batch_leaves_the_counted_part_as_it_is() -> None:
    # Given batch 1 counted with its part, and the worker trusting the job from that commit
    store, parts, finalizer, recent = worker()
    process_batch(batch(0), store=store, blobs=parts, finalizer=finalizer, recent=recent)
    process_batch(batch(1), store=store, blobs=parts, finalizer=finalizer, recent=recent)
    counted_part = parts.files["parts/job_1/000001.csv"]
    # When batch 1 comes again with other rows (a duplicate message whose enrichment would differ)
    again = process_batch(batch(1, "other.org"), store=store, blobs=parts, finalizer=finalizer, recent=recent)
    # Then it is not counted again and the part is still the counted one
    assert again is False and store.counted[1].processed == 2 and len(store.counted) == 2
    assert parts.files["parts/job_1/000001.csv"] == counted_part


def test_a_part_written_but_never_counted_is_replaced_and_counted() -> None:
    # Given a part of batch 1 written by a delivery that crashed before its commit
    store, parts, finalizer, recent = worker()
    process_batch(batch(0), store=store, blobs=parts, finalizer=finalizer, recent=recent)
    parts.files["parts/job_1/000001.csv"] = b"half a crash\r\n"
    # When batch 1 is delivered again
    counted = process_batch(batch(1), store=store, blobs=parts, finalizer=finalizer, recent=recent)
    # Then it is counted, with this delivery's part
    assert counted and 1 in store.counted
    assert b"a1@example.com" in parts.files["parts/job_1/000001.csv"]


def test_a_cancel_stops_the_counting_at_the_batch_in_hand() -> None:
    # Given a job whose first batch this worker counted
    job = email_job(4)
    store, parts, finalizer, recent = ReadCountingStore(job), ConditionalParts(), RecordingFinalizer(), RecentJobs()
    process_batch(batch(0), store=store, blobs=parts, finalizer=finalizer, recent=recent)
    # When the job is cancelled, and the store's commit condition (status = processing) then fails
    job.status = JobStatus.CANCELLED
    store.commit_batch = lambda job_id, number, counts: None  # type: ignore[method-assign]
    first = process_batch(batch(1), store=store, blobs=parts, finalizer=finalizer, recent=recent)
    reads = store.reads
    second = process_batch(batch(2), store=store, blobs=parts, finalizer=finalizer, recent=recent)
    # Then neither batch is counted, and the one after the failed commit reads the job (and is not enriched)
    assert (first, second) == (False, False) and store.reads == reads + 1
    assert "parts/job_1/000002.csv" not in parts.files and finalizer.started == []


def test_a_job_not_counted_here_lately_is_read_again() -> None:
    # Given a worker that counted a batch of the job longer ago than it trusts a commit
    clock = Clock()
    store, parts, finalizer, recent = worker(clock)
    process_batch(batch(0), store=store, blobs=parts, finalizer=finalizer, recent=recent)
    clock.now += TRUST_SECONDS + 1
    # When the next batch comes
    process_batch(batch(1), store=store, blobs=parts, finalizer=finalizer, recent=recent)
    # Then the job is read before it
    assert store.reads == 2
