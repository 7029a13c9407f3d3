"""A URL job's fetch claimed against the emulation's DynamoDB: one delivery of its message at a time fetches it."""

from __future__ import annotations

import secrets

from functions.adapters.jobs import JobStore
from functions.models import Job, JobStatus

STARTED = "2026-01-01T00:10:00.000Z"


def url_job(store: JobStore) -> Job:
    job = Job(
        id="job_" + secrets.token_hex(10),
        account_id="acct_fetch",
        type="email",
        status=JobStatus.QUEUED,
        source_key="uploads/acct_fetch/x.csv",
        created_at="2026-01-01T00:00:00.000Z",
        source_url="https://files.example.com/a.csv",
    )
    assert store.put_new_job(job)
    return job


def test_a_fetch_is_started_once_until_its_lease_has_passed(store: JobStore) -> None:
    job = url_job(store)
    # The first delivery starts the fetch
    started = store.start_fetch(job.id, STARTED, running_since="2026-01-01T00:00:00.000Z")
    assert started is not None and started.fetch_started_at == STARTED
    # A second delivery within the lease (the fetch started after its `running_since`) cannot start it again
    assert store.start_fetch(job.id, "2026-01-01T00:11:00.000Z", running_since="2026-01-01T00:00:00.000Z") is None
    assert store.get_job(job.id).fetch_started_at == STARTED  # type: ignore[union-attr]
    # A redelivery once the lease has passed (the first fetcher died) starts it again
    again = store.start_fetch(job.id, "2026-01-01T02:00:00.000Z", running_since="2026-01-01T01:49:00.000Z")
    assert again is not None and again.fetch_started_at == "2026-01-01T02:00:00.000Z"
    # And a job that is no longer queued is never started
    store.set_status(job.id, JobStatus.CANCELLED, only_from=("queued",), now="2026-01-01T02:01:00.000Z")
    assert store.start_fetch(job.id, "2026-01-01T05:00:00.000Z", running_since="2026-01-01T04:00:00.000Z") is None
