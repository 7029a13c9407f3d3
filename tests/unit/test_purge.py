"""Purging a job: only once it has ended and its credits are settled; a cancel never purges."""

from __future__ import annotations

from typing import Any

import pytest

from functions.errors import ConflictError, NotFoundError
from functions.logic import jobs, purge
from functions.models import Job, JobStatus
from tests.fakes import JobsInMemory, RecordingFinalizer

JOB = "job_bbbbbbbbbbbbbbbbbbbb"


def job(**fields: Any) -> Job:
    values: dict[str, Any] = {
        "id": JOB,
        "account_id": "acct_a",
        "type": "email",
        "status": JobStatus.COMPLETED,
        "source_key": f"uploads/acct_a/{JOB}.csv",
        "created_at": "2030-01-01T00:00:00.000Z",
        "credits_settled": True,
        "result_key": f"results/acct_a/{JOB}.csv",
    }
    values.update(fields)
    return Job.model_validate(values)


class Store(JobsInMemory):
    def __init__(self, jobs: list[Job]) -> None:
        super().__init__(jobs)
        self.deleted: list[str] = []

    def begin_purge(self, job_id: str, now: str) -> Job | None:
        found = self.jobs.get(job_id)
        if found is None or not found.status.is_terminal or not found.credits_settled:
            return None
        found.purging_at = found.purging_at or now
        return found

    def delete_job(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)
        self.deleted.append(job_id)


class Bucket:
    def __init__(self, keys: list[str]) -> None:
        self.keys = set(keys)

    def purge(self, prefix: str, *, exact: bool = False) -> int:
        gone = {k for k in self.keys if (k == prefix if exact else k.startswith(prefix))}
        self.keys -= gone
        return len(gone)


FILES = [
    f"uploads/acct_a/{JOB}.csv",
    f"parts/{JOB}/000000.csv",
    f"parts/{JOB}/000001.csv",
    f"results/acct_a/{JOB}.csv",
    f"results/acct_a/{JOB}/ok.jsonl",
    "results/acct_a/job_cccccccccccccccccccc.csv",
]


def test_an_ended_settled_job_is_purged_with_every_file_it_left() -> None:
    # Given a completed job with its upload, parts, result and a variant, beside another job's result
    store, bucket = Store([job()]), Bucket(FILES)
    # When its owner purges it
    purge.purge_job(store, bucket, "acct_a", JOB)
    # Then it is gone, with all its files, and nothing of the other job is touched
    assert store.deleted == [JOB]
    assert bucket.keys == {"results/acct_a/job_cccccccccccccccccccc.csv"}
    # And a second purge answers 404 like any unknown job
    with pytest.raises(NotFoundError) as err:
        purge.purge_job(store, bucket, "acct_a", JOB)
    assert err.value.code == "job_not_found"


def test_a_cancel_of_an_ended_job_changes_nothing() -> None:
    # Given a completed job with its result
    store, bucket, finalizer = Store([job()]), Bucket(FILES), RecordingFinalizer()
    # When its owner cancels it (a cancel that crossed the job's end)
    with pytest.raises(ConflictError) as err:
        jobs.cancel_job(store, finalizer, "acct_a", JOB)
    # Then the answer is 409 job_finished, and the job and every file stay
    assert err.value.code == "job_finished"
    assert store.jobs[JOB].status == JobStatus.COMPLETED and store.deleted == [] and bucket.keys == set(FILES)
    assert finalizer.started == []


def test_a_running_job_is_not_purged() -> None:
    store, bucket = Store([job(status=JobStatus.PROCESSING, credits_settled=False)]), Bucket(FILES)
    with pytest.raises(ConflictError) as err:
        purge.purge_job(store, bucket, "acct_a", JOB)
    assert err.value.code == "job_not_finished"
    assert store.jobs[JOB].status == JobStatus.PROCESSING and len(bucket.keys) == len(FILES) and store.deleted == []


def test_an_ended_job_still_being_finalized_is_not_purged_yet() -> None:
    # Given a cancelled job whose finalizer has not yet refunded the unused credits
    store, bucket = Store([job(status=JobStatus.CANCELLED, credits_settled=False)]), Bucket(FILES)
    # When it is purged
    with pytest.raises(ConflictError) as err:
        purge.purge_job(store, bucket, "acct_a", JOB)
    # Then it stays, cancelled, with its files (the refund still needs it): ask again
    assert err.value.code == "job_not_finished" and err.value.details["status"] == "cancelled"
    assert store.deleted == [] and len(bucket.keys) == len(FILES)


def test_a_purge_that_stopped_halfway_is_finished_by_the_next_purge() -> None:
    # Given a job whose purge began (it reads as gone) but whose items were never deleted
    store, bucket = Store([job(purging_at="2030-01-02T00:00:00.000Z")]), Bucket(FILES[:2])
    # Then reads (and a cancel) do not see it, but the next purge finishes it
    with pytest.raises(NotFoundError):
        jobs.cancel_job(store, RecordingFinalizer(), "acct_a", JOB)
    purge.purge_job(store, bucket, "acct_a", JOB)
    assert store.deleted == [JOB] and bucket.keys == set()


def test_another_accounts_job_is_not_found() -> None:
    store, bucket = Store([job()]), Bucket(FILES)
    with pytest.raises(NotFoundError):
        purge.purge_job(store, bucket, "acct_other", JOB)
    assert store.deleted == [] and len(bucket.keys) == len(FILES)


class Finishing(Store):
    def record_result(
        self, job_id: str, result_key: str, result_rows: int, now: str, summary: dict[str, dict[str, int]]
    ) -> Job:
        raise AssertionError("not called")


class Settling:
    def settle_credits(self, job: Job, now: str) -> bool:
        return True


class Bus:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def put(self, detail_type: str, detail: dict[str, Any]) -> None:
        self.sent.append(detail_type)


def test_a_finalizer_task_retried_after_the_purge_ends_quietly() -> None:
    # Given a job deleted by its owner while a finalizer task was being retried
    from functions.logic import finalize

    store, credits, bus = Finishing([]), Settling(), Bus()
    # When the task runs again
    completed = finalize.complete_job(JOB, store=store, credits=credits, events=bus, bucket="b")
    failed = finalize.fail_job(JOB, "finalizer_failed", "x", store=store, credits=credits, events=bus, bucket="b")
    # Then it ends without an error (no retries, no alarm) and announces nothing
    assert completed["status"] == failed["status"] == "deleted" and bus.sent == []
