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
        self.broken = broken

    def request_fetch(self, job_id: str) -> None:
        if self.broken:
            raise ConnectionError("queue unreachable")
        self.requested.append(job_id)


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


def test_a_fetched_file_goes_to_the_jobs_upload_key_and_the_job_stays_queued_for_the_split() -> None:
    store, fetcher, finalizer = JobsInMemory([queued()]), Fetcher(), RecordingFinalizer()
    outcome = fetching.fetch_job("job_x", store=store, fetcher=fetcher, finalizer=finalizer, max_bytes=1000)
    assert outcome == "fetched" and fetcher.fetched == [
        ("https://files.example.com/a.csv", "uploads/a/job_x.csv", 1000)
    ]
    assert store.jobs["job_x"].status == JobStatus.QUEUED and finalizer.started == []


@pytest.mark.parametrize("code", ["fetch_blocked", "fetch_too_large", "fetch_failed"])
def test_a_fetch_refused_for_the_customers_reason_ends_the_job_failed_with_its_code(code: str) -> None:
    store, finalizer = JobsInMemory([queued()]), RecordingFinalizer()
    fetcher = Fetcher(FetchError("why", code=code))
    assert fetching.fetch_job("job_x", store=store, fetcher=fetcher, finalizer=finalizer, max_bytes=10) == code
    job = store.jobs["job_x"]
    assert (job.status, job.error) == (JobStatus.FAILED, code) and finalizer.started == ["job_x"]


def test_a_job_no_longer_queued_is_not_fetched_again() -> None:
    store, fetcher = JobsInMemory([queued(status=JobStatus.CANCELLED)]), Fetcher()
    assert fetching.fetch_job("job_x", store=store, fetcher=fetcher, finalizer=RecordingFinalizer(), max_bytes=1) == (
        "skipped"
    )
    assert fetcher.fetched == []


def test_the_sweeper_ends_a_url_job_whose_fetch_never_finished_as_fetch_failed() -> None:
    now = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    limits = {
        "start_after": timedelta(minutes=15),
        "split_lease": timedelta(minutes=15),
        "stalled_after": timedelta(hours=6),
    }
    assert decide(queued(), now, **limits) == ("fail", "fetch_failed")
    assert decide(queued().model_copy(update={"source_url": None}), now, **limits) == ("fail", "not_started")
