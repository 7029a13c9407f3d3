"""Jobs from a URL: the URL rules at creation, and what a fetch does to the job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.errors import FetchError, InputError
from functions.logic import fetching
from functions.logic.sweeper import decide
from functions.models import Job, JobStatus
from tests.fakes import JobsInMemory, RecordingFinalizer


class Store(JobsInMemory):
    def put_new_job(self, job: Job) -> bool:
        self.jobs[job.id] = job.model_copy()
        return True

    def create_job_reserving(self, job: Job, now: str, request_id: str | None = None) -> None:
        raise AssertionError("nothing is reserved before the file's rows are counted")


class Queue:
    def __init__(self, broken: bool = False) -> None:
        self.requested: list[str] = []
        self.delays: list[int] = []
        self.broken = broken

    def request_fetch(self, job_id: str, delay_seconds: int = 0) -> None:
        if self.broken:
            raise ConnectionError("queue unreachable")
        self.requested.append(job_id)
        self.delays.append(delay_seconds)


class Fetching(JobsInMemory):
    """Jobs whose fetch's start and end are recorded."""

    def start_fetch(self, job_id: str, now: str, running_since: str) -> Job | None:
        job = self.jobs[job_id]
        if job.status != JobStatus.QUEUED or (job.fetch_started_at or "") >= running_since:
            return None
        job.fetch_started_at = now
        return job

    def finish_fetch(self, job_id: str, now: str) -> None:
        self.jobs[job_id].fetched_at = now


class Slots:
    """An account's fetch slots, `per_account` at most."""

    def __init__(self, per_account: int = 2) -> None:
        self.per_account = per_account
        self.held: dict[str, set[str]] = {}

    def acquire(self, account_id: str, job_id: str) -> bool:
        held = self.held.setdefault(account_id, set())
        if len(held - {job_id}) >= self.per_account:
            return False
        held.add(job_id)
        return True

    def release(self, account_id: str, job_id: str) -> None:
        self.held.get(account_id, set()).discard(job_id)


def create(url: str, store: Store, queue: Queue, allow_http: bool = False) -> Job:
    return fetching.create_remote_job(
        account_id="acct_a", job_type="email", url=url, column=None, allow_http=allow_http, store=store, queue=queue
    )


def test_a_job_from_a_url_is_queued_for_its_fetch_and_named_after_the_file() -> None:
    store, queue = Store(), Queue()
    job = create("https://files.example.com/exports/May%20leads.csv?token=abc", store, queue)
    assert (
        job.status == JobStatus.QUEUED
        and job.source_url == "https://files.example.com/exports/May%20leads.csv?token=abc"
    )
    assert job.filename == "May leads.csv" and job.source_key == f"uploads/acct_a/{job.id}.csv"
    assert queue.requested == [job.id] and store.jobs[job.id].credits_reserved == 0


def test_a_fetch_that_cannot_be_queued_leaves_no_job_waiting() -> None:
    store = Store()
    with pytest.raises(ConnectionError):
        create("https://files.example.com/a.csv", store, Queue(broken=True))
    [job] = store.jobs.values()
    assert job.status == JobStatus.FAILED and job.error == "fetch_failed"


@pytest.mark.parametrize(
    ("url", "allow_http"),
    [
        ("http://files.example.com/a.csv", False),
        ("ftp://files.example.com/a.csv", True),
        ("file:///etc/passwd", True),
        ("https://user:secret@files.example.com/a.csv", False),
        ("https:///a.csv", False),
        ("https://files.example.com:99999/a.csv", False),
        ("not a url", False),
        ("https://files.example.com/a.csv\r\nX-Injected: 1", False),
        ("https://files.example.com/May leads.csv", False),
        ("https://files.example.com/<a>.csv", False),
    ],
)
def test_a_url_that_cannot_be_fetched_is_refused_before_a_job_exists(url: str, allow_http: bool) -> None:
    store, queue = Store(), Queue()
    with pytest.raises(InputError) as err:
        create(url, store, queue, allow_http=allow_http)
    assert (err.value.code, err.value.details["parameter"]) == ("invalid_parameter", "url")
    assert store.jobs == {} and queue.requested == []


def test_a_url_with_non_ascii_text_is_stored_as_it_will_be_requested() -> None:
    job = create("https://dateien.münchen.de/Kunden/café.csv?für=ä", Store(), Queue())
    assert job.source_url == "https://dateien.xn--mnchen-3ya.de/Kunden/caf%C3%A9.csv?f%C3%BCr=%C3%A4"
    assert job.filename == "café.csv"


def test_locally_http_is_allowed_for_loopback_test_servers() -> None:
    job = create("http://127.0.0.1:8000/leads.csv", Store(), Queue(), allow_http=True)
    assert job.source_url == "http://127.0.0.1:8000/leads.csv"


class Fetcher:
    def __init__(self, error: FetchError | None = None) -> None:
        self.error = error
        self.fetched: list[tuple[str, str, int]] = []

    def fetch(self, url: str, key: str, *, max_bytes: int) -> int:
        if self.error is not None:
            raise self.error
        self.fetched.append((url, key, max_bytes))
        return 123


def queued(url: str = "https://files.example.com/a.csv", status: JobStatus = JobStatus.QUEUED) -> Job:
    return Job(
        id="job_x",
        account_id="a",
        type="email",
        status=status,
        source_key="uploads/a/job_x.csv",
        created_at="2026-01-01T00:00:00.000Z",
        source_url=url,
    )


def fetch(
    store: Fetching,
    fetcher: Fetcher,
    finalizer: RecordingFinalizer,
    *,
    max_bytes: int,
    job_id: str = "job_x",
    slots: Slots | None = None,
    queue: Queue | None = None,
) -> str:
    return fetching.fetch_job(
        job_id,
        store=store,
        fetcher=fetcher,
        finalizer=finalizer,
        max_bytes=max_bytes,
        slots=slots or Slots(),
        queue=queue or Queue(),
        slot_wait_seconds=30,
        lease_seconds=660,
    )


def test_a_fetched_file_goes_to_the_jobs_upload_key_and_the_job_stays_queued_for_the_split() -> None:
    store, fetcher, finalizer = Fetching([queued()]), Fetcher(), RecordingFinalizer()
    outcome = fetch(store, fetcher, finalizer, max_bytes=1000)
    assert outcome == "fetched" and fetcher.fetched == [
        ("https://files.example.com/a.csv", "uploads/a/job_x.csv", 1000)
    ]
    assert store.jobs["job_x"].status == JobStatus.QUEUED and finalizer.started == []
    # And the job records when its fetch started and when the file was stored (the sweeper times it from these)
    assert store.jobs["job_x"].fetch_started_at and store.jobs["job_x"].fetched_at


def test_a_fetch_waits_while_its_account_holds_all_its_slots_and_gives_its_slot_back() -> None:
    # Given an account whose two fetch slots are held by its other jobs
    slots, queue = Slots(per_account=2), Queue()
    slots.held["a"] = {"job_1", "job_2"}
    store, fetcher = Fetching([queued()]), Fetcher()
    # When its third job's fetch comes
    outcome = fetch(store, fetcher, RecordingFinalizer(), max_bytes=10, slots=slots, queue=queue)
    # Then it is not fetched but queued again for later, and the job still waits (no fetch started)
    assert outcome == "deferred" and fetcher.fetched == [] and (queue.requested, queue.delays) == (["job_x"], [30])
    assert store.jobs["job_x"].fetch_started_at is None and store.jobs["job_x"].status == JobStatus.QUEUED
    # And another account's job is fetched at once
    other = queued().model_copy(update={"id": "job_b", "account_id": "b"})
    store.jobs["job_b"] = other
    assert fetch(store, fetcher, RecordingFinalizer(), max_bytes=10, job_id="job_b", slots=slots, queue=queue) == (
        "fetched"
    )
    # And once a slot is free, the job is fetched, and its slot given back whether the fetch worked or failed
    slots.release("a", "job_1")
    assert fetch(store, fetcher, RecordingFinalizer(), max_bytes=10, slots=slots, queue=queue) == "fetched"
    assert slots.held == {"a": {"job_2"}, "b": set()}
    store.jobs["job_y"] = queued().model_copy(update={"id": "job_y"})
    failing = Fetcher(FetchError("why", code="fetch_failed"))
    assert fetch(store, failing, RecordingFinalizer(), max_bytes=10, job_id="job_y", slots=slots) == "fetch_failed"
    assert slots.held["a"] == {"job_2"}


@pytest.mark.parametrize("code", ["fetch_blocked", "fetch_too_large", "fetch_failed"])
def test_a_fetch_refused_for_the_customers_reason_ends_the_job_failed_with_its_code(code: str) -> None:
    store, finalizer = Fetching([queued()]), RecordingFinalizer()
    fetcher = Fetcher(FetchError("why", code=code))
    assert fetch(store, fetcher, finalizer, max_bytes=10) == code
    job = store.jobs["job_x"]
    assert (job.status, job.error) == (JobStatus.FAILED, code) and finalizer.started == ["job_x"]


def test_a_job_no_longer_queued_is_not_fetched_again() -> None:
    store, fetcher = Fetching([queued(status=JobStatus.CANCELLED)]), Fetcher()
    assert fetch(store, fetcher, RecordingFinalizer(), max_bytes=1) == "skipped"
    assert fetcher.fetched == []


def test_the_sweeper_times_a_url_job_from_its_fetch_not_from_its_creation() -> None:
    # Given a URL job created an hour ago (four times the sweeper's old 15-minute window)
    now = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    limits = {
        "start_after": timedelta(minutes=15),
        "split_lease": timedelta(minutes=15),
        "stalled_after": timedelta(hours=6),
        "fetch_wait": timedelta(hours=24),
        "fetch_lease": timedelta(minutes=105),
    }

    def at(minutes_ago: float) -> str:
        return (now - timedelta(minutes=minutes_ago)).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    # Then waiting for a fetch slot, or fetching for 50 minutes, is not a failure (it was fetch_failed before)
    assert decide(queued(), now, **limits) is None
    assert decide(queued().model_copy(update={"fetch_started_at": at(50)}), now, **limits) is None
    # But a fetch that started longer ago than its lease, or never started within the request's life, fails
    assert decide(queued().model_copy(update={"fetch_started_at": at(106)}), now, **limits) == ("fail", "fetch_failed")
    assert decide(queued(), now + timedelta(hours=24), **limits) == ("fail", "fetch_failed")
    # And a fetched file waits for its split like any upload: not_started 15 minutes after it was stored
    fetched = queued().model_copy(update={"fetch_started_at": at(30), "fetched_at": at(20)})
    assert decide(fetched, now, **limits) == ("fail", "not_started")
    assert decide(fetched.model_copy(update={"fetched_at": at(5)}), now, **limits) is None
    assert decide(queued().model_copy(update={"source_url": None}), now, **limits) == ("fail", "not_started")


def test_a_second_delivery_while_the_fetch_runs_leaves_it_to_the_first_one() -> None:
    # Given a fetch message delivered twice (SQS delivers at least once); the second arrives during the download
    store, slots = Fetching([queued()]), Slots(per_account=1)
    during: list[tuple[str, set[str]]] = []

    class Redelivered(Fetcher):
        def fetch(self, url: str, key: str, *, max_bytes: int) -> int:
            if not during:
                during.append((fetch(store, self, RecordingFinalizer(), max_bytes=max_bytes, slots=slots), set()))
                during[0][1].update(slots.held["a"])
            return super().fetch(url, key, max_bytes=max_bytes)

    fetcher = Redelivered()
    # When the first delivery fetches
    assert fetch(store, fetcher, RecordingFinalizer(), max_bytes=10, slots=slots) == "fetched"
    # Then the second one did not download the file again, and left the first one its slot while it ran
    assert during == [("running", {"job_x"})] and len(fetcher.fetched) == 1
    assert slots.held["a"] == set()


def test_a_redelivery_after_a_crashed_fetch_fetches_again() -> None:
    # Given a fetch that started longer ago than a fetch can last (its fetcher died; the queue delivers it again)
    long_ago = (datetime.now(UTC) - timedelta(seconds=661)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    store, fetcher = Fetching([queued().model_copy(update={"fetch_started_at": long_ago})]), Fetcher()
    # Then the redelivery fetches the file
    assert fetch(store, fetcher, RecordingFinalizer(), max_bytes=10) == "fetched" and len(fetcher.fetched) == 1
