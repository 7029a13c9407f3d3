"""Job lifecycle rules with in-memory fakes: creation checks, status view, cancel transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.errors import ConflictError, InputError, InsufficientCreditsError, NotFoundError
from functions.logic import job_views, jobs
from functions.models import Job, JobStatus
from tests.fakes import JobsInMemory, RecordingFinalizer


class FakeStore(JobsInMemory):
    """The jobs table as both the job and the credit store see it: a job created with its reservation is stored."""

    def __init__(self, credits: int = 1000) -> None:
        super().__init__()
        self.credits = credits

    def create_job_reserving(self, job: Job, now: str, request_id: str | None = None) -> None:
        needed = job.total_rows or 0
        if self.credits < needed:
            raise InsufficientCreditsError(
                f"this job needs {needed} credits, the balance is {self.credits}", required=needed, balance=self.credits
            )
        self.credits -= needed
        job.credits_reserved = needed
        self.jobs[job.id] = job.model_copy()


class FakeBlobs:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(
        self, key: str, body: bytes, *, content_type: str = "text/csv", metadata: dict[str, str] | None = None
    ) -> None:
        self.objects[key] = body


def make(store: FakeStore, blobs: FakeBlobs, body: bytes, job_type: str = "email", max_rows: int = 100) -> Job:
    return jobs.create_job(
        account_id="acct_a",
        job_type=job_type,
        filename="f.csv",
        body=body,
        column=None,
        max_rows=max_rows,
        max_bytes=10_000,
        store=store,
        credits=store,
        blobs=blobs,
    )


def test_create_counts_rows_stores_the_job_queued_and_then_the_file() -> None:
    store, blobs = FakeStore(), FakeBlobs()
    # When a 3-row file is accepted
    job = make(store, blobs, b"email\na@x.com\nb@x.com\nc@x.com\n")
    # Then the job is queued with its count, and the file sits where the splitter looks for it
    assert job.status == JobStatus.QUEUED and job.total_rows == 3 and job.id.startswith("job_") and len(job.id) == 24
    assert blobs.objects[f"uploads/acct_a/{job.id}.csv"].startswith(b"email")
    assert store.jobs[job.id].account_id == "acct_a"
    # and its rows' credits are reserved
    assert (job.credits_reserved, store.credits) == (3, 997)


@pytest.mark.parametrize(
    ("body", "job_type", "max_rows", "code"),
    [
        (b"email\na@x.com\n", "fax", 10, "unsupported_type"),
        (b"   \r\n", "email", 10, "empty_file"),
        (b"email\n" + b"a@x.com\n" * 11, "email", 10, "too_many_rows"),
        (b"email\n", "email", 10, "no_rows"),
    ],
)
def test_create_refuses_bad_input_before_storing_anything(body: bytes, job_type: str, max_rows: int, code: str) -> None:
    store, blobs = FakeStore(), FakeBlobs()
    with pytest.raises(InputError) as err:
        make(store, blobs, body, job_type, max_rows)
    assert err.value.code == code
    assert store.jobs == {} and blobs.objects == {}


def test_create_refuses_a_job_the_balance_cannot_cover() -> None:
    store, blobs = FakeStore(credits=2), FakeBlobs()
    with pytest.raises(InsufficientCreditsError) as err:
        make(store, blobs, b"email\na@x.com\nb@x.com\nc@x.com\n")
    assert err.value.details == {"required": 3, "balance": 2} and blobs.objects == {}


def test_other_accounts_job_is_not_found() -> None:
    store = FakeStore()
    job = make(store, FakeBlobs(), b"a@x.com\n")
    with pytest.raises(NotFoundError):
        jobs.get_job_for(store, "acct_other", job.id)
    with pytest.raises(NotFoundError):
        jobs.get_job_for(store, "acct_a", "job_doesnotexist")


def test_cancel_moves_an_active_job_to_cancelled_once_and_starts_the_finalizer() -> None:
    store, fin = FakeStore(), RecordingFinalizer()
    job = make(store, FakeBlobs(), b"a@x.com\n")
    first = jobs.cancel_job(store, fin, "acct_a", job.id)
    second = jobs.cancel_job(store, fin, "acct_a", job.id)
    assert first.status == second.status == JobStatus.CANCELLED
    assert fin.started == [job.id]


def test_cancel_of_a_finished_job_is_a_conflict() -> None:
    store, fin = FakeStore(), RecordingFinalizer()
    job = make(store, FakeBlobs(), b"a@x.com\n")
    store.jobs[job.id].status = JobStatus.COMPLETED
    with pytest.raises(ConflictError) as err:
        jobs.cancel_job(store, fin, "acct_a", job.id)
    assert err.value.code == "job_finished" and fin.started == []


def test_status_view_estimates_eta_from_the_rate_so_far() -> None:
    now = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    started = (now - timedelta(seconds=10)).isoformat().replace("+00:00", "Z")
    job = Job(
        id="job_x",
        account_id="a",
        type="email",
        status=JobStatus.PROCESSING,
        source_key="k",
        created_at=started,
        started_at=started,
        total_rows=1000,
        processed=250,
        succeeded=240,
        invalid=10,
    )
    view = job_views.status_view(job, now)
    assert (view["percent"], view["eta_seconds"], view["succeeded"], view["invalid"]) == (25.0, 30.0, 240, 10)
    queued = job.model_copy(update={"status": JobStatus.QUEUED, "processed": 0})
    assert job_views.status_view(queued, now)["eta_seconds"] is None


def test_terminal_statuses() -> None:
    assert {s for s in JobStatus if s.is_terminal} == {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}
