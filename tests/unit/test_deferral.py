"""A batch a provider's time budget could not finish goes back to the queue; it is counted once it is done."""

from __future__ import annotations

from collections.abc import Sequence

from functions.enrich.facts import DarkwebResult
from functions.enrich.online import Source, Sources
from functions.logic.processing import MAX_STALLS, process_batch
from functions.models import Batch, BatchCounts, Job, JobStatus
from tests.fakes import CleanBreaches, JobsInMemory, MemoryCache, RecordingFinalizer


class Store(JobsInMemory):
    """Jobs in memory, counting batches once and noting progress."""

    def __init__(self, job: Job) -> None:
        super().__init__([job])
        self.counted: dict[int, BatchCounts] = {}
        self.touched = 0

    def commit_batch(self, job_id: str, batch: int, counts: BatchCounts) -> int | None:
        if batch in self.counted:
            return None
        self.counted[batch] = counts
        job = self.jobs[job_id]
        job.batches_done += 1
        job.done_batches.append(batch)
        return (job.total_batches or 0) - job.batches_done if job.total_batches is not None else -job.batches_done

    def touch_progress(self, job_id: str) -> None:
        self.touched += 1


class Parts:
    """Part files in memory."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.writes = 0

    def put(
        self, key: str, body: bytes, *, content_type: str = "text/csv", metadata: dict[str, str] | None = None
    ) -> None:
        self.files[key] = body
        self.writes += 1


class Queue:
    """The work queue: remembers what was sent back."""

    def __init__(self) -> None:
        self.sent: list[Batch] = []

    def send(self, bodies: Sequence[str]) -> None:
        self.sent += [Batch.model_validate_json(body) for body in bodies]


def job() -> Job:
    return Job(
        id="job_1", account_id="acct", type="darkweb", status=JobStatus.PROCESSING, source_key="k", created_at="t",
        total_rows=6, total_batches=1,
    )  # fmt: skip


def batch(**turn: int | None) -> Batch:
    rows = [[f"user{i}@example.com"] for i in range(6)]
    return Batch(job_id="job_1", batch=0, first_row=0, column_index=0, header=["email"], rows=rows, **turn)  # type: ignore[arg-type]


def sources(provider: CleanBreaches, cache: MemoryCache, per_turn: int) -> Sources:
    """HIBP through the cache, with a budget that lets `per_turn` lookups through per batch turn."""
    ticks = iter(range(10_000))
    # The clock moves one second per reading: the deadline is read at 0, the check before chunk k reads k.
    hibp = Source(
        "hibp", DarkwebResult, provider.lookup_many, cache,
        budget_seconds=per_turn + 0.5, chunk=1, clock=lambda: float(next(ticks)),
    )  # fmt: skip
    return Sources(hibp=hibp)


def test_a_batch_comes_back_until_every_value_was_asked_and_is_then_counted_once() -> None:
    # Given a darkweb batch of six addresses and a provider that has time for two per turn
    store, parts, queue, finalizer = Store(job()), Parts(), Queue(), RecordingFinalizer()
    provider, cache = CleanBreaches(), MemoryCache()
    turn = batch()
    # When the worker takes the batch, and each batch it sends back, until it is counted
    turns = 0
    while True:
        turns += 1
        counted = process_batch(
            turn, store=store, blobs=parts, finalizer=finalizer, sources=sources(provider, cache, 2), requeue=queue
        )
        if counted:
            break
        turn = queue.sent[-1]
    # Then it went back twice (2 + 2 asked), each time noting progress, and was counted on the third turn
    assert turns == 3 and [b.deferrals for b in queue.sent] == [1, 2] and store.touched == 2
    assert [b.unasked for b in queue.sent] == [4, 2]
    # And every address was asked exactly once, all six rows ok and charged once
    assert sorted(provider.asked) == sorted(f"user{i}@example.com" for i in range(6))
    assert store.counted[0] == BatchCounts(processed=6, succeeded=6, invalid=0, failed=0, credits=6)
    assert finalizer.started == ["job_1"]


def test_a_batch_that_stops_moving_is_counted_with_the_unasked_values_as_timeouts() -> None:
    # Given a batch that has come back MAX_STALLS - 1 times without any new value asked
    store, parts, queue = Store(job()), Parts(), Queue()
    stuck = batch(deferrals=5, unasked=6, stalls=MAX_STALLS - 1)
    # When again nothing can be asked (no time at all)
    counted = process_batch(
        stuck, store=store, blobs=parts, finalizer=RecordingFinalizer(),
        sources=sources(CleanBreaches(), MemoryCache(), 0), requeue=queue,
    )  # fmt: skip
    # Then it is not sent back but counted: six uncharged provider_timeout errors
    assert counted and queue.sent == []
    assert store.counted[0] == BatchCounts(processed=6, succeeded=0, invalid=0, failed=6, credits=0)
    assert b"provider_timeout" in parts.files["parts/job_1/000000.csv"]


def test_without_a_queue_to_send_it_back_a_batch_is_counted_at_once() -> None:
    # Given no queue to send batches back to (the dead-letter path, or a deployment without it)
    store, parts = Store(job()), Parts()
    # When a batch runs out of time after two values
    counted = process_batch(
        batch(), store=store, blobs=parts, finalizer=RecordingFinalizer(),
        sources=sources(CleanBreaches(), MemoryCache(), 2),
    )  # fmt: skip
    # Then it is counted: two ok, four provider_timeout errors
    assert counted
    assert store.counted[0] == BatchCounts(processed=6, succeeded=2, invalid=0, failed=4, credits=2)


def test_a_second_turn_after_the_count_leaves_the_counted_part_alone() -> None:
    # Given a batch that was counted (its first turn answered all six)
    store, parts, finalizer = Store(job()), Parts(), RecordingFinalizer()
    provider, cache = CleanBreaches(), MemoryCache()
    assert process_batch(batch(), store=store, blobs=parts, finalizer=finalizer, sources=sources(provider, cache, 6))
    counted_part = dict(parts.files)
    # When a stray second turn of it arrives (a redelivery, or a deferred copy sent before a crash)
    again = process_batch(
        batch(deferrals=1, unasked=4), store=store, blobs=parts, finalizer=finalizer,
        sources=sources(provider, cache, 0), requeue=Queue(),
    )  # fmt: skip
    # Then it is skipped: no second count, the part file as counted, written once; the finalizer asked again (a no-op)
    assert again is False and len(store.counted) == 1
    assert parts.files == counted_part and parts.writes == 1
    assert finalizer.started == ["job_1", "job_1"]
