"""The scheduled sweeper against the local stack: stranded jobs end, moving jobs are left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.adapters.blobs import BlobStore
from functions.adapters.jobs import JobStore
from functions.logic.intake import upload_key
from functions.logic.jobs import new_job_id, utcnow
from functions.logic.processing import process_batch
from functions.models import Batch, Job, JobStatus
from local.resources import rate_seconds
from local.runtime import LocalRuntime, scheduled_event
from tests.helpers import wait_for

SWEEPER = "functions.handlers.sweeper.lambda_handler"
LONG_AGO = "2000-01-01T00:00:00Z"


def stamp(ago: timedelta) -> str:
    return (datetime.now(UTC) - ago).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_job(store: JobStore, account: str, *, created: timedelta) -> Job:
    job = Job(
        id=new_job_id(),
        account_id=account,
        type="email",
        status=JobStatus.QUEUED,
        source_key=f"uploads/{account}/never-uploaded.csv",
        created_at=stamp(created),
        header=["email"],
    )
    assert store.put_new_job(job)
    return job


def sweep(runtime: LocalRuntime) -> dict[str, Any]:
    """Run the sweeper once, with the event its schedule rule delivers."""
    assert runtime.invoker is not None and runtime.topology is not None
    function = runtime.function_id(SWEEPER)
    rule = next(s.rule_arn for s in runtime.topology.schedules if s.function == function)
    return dict(runtime.invoker.invoke(function, scheduled_event(rule)))


def is_active(store: JobStore, job_id: str) -> bool:
    return job_id in store.active_job_ids(utcnow(), limit=10_000)


class _LostStart:
    """A finalizer start that never happens: the worker died right after counting the last batch."""

    def start(self, job_id: str) -> bool:
        return False


def test_the_sweeper_is_scheduled_locally(runtime: LocalRuntime) -> None:
    # Given the topology built from the template
    assert runtime.topology is not None
    # Then the sweeper has one schedule, at the deployed rate, on a running timer
    schedules = [s for s in runtime.topology.schedules if s.function == runtime.function_id(SWEEPER)]
    assert [s.seconds for s in schedules] == [rate_seconds("rate(5 minutes)")]
    assert [t.is_alive() for t in runtime.schedules] == [True] * len(runtime.topology.schedules)


def test_job_never_picked_up_is_failed_not_started(store: JobStore, runtime: LocalRuntime, account: str) -> None:
    # Given a job queued an hour ago whose file never arrived (no S3 object, so no split)
    job = new_job(store, account, created=timedelta(hours=1))
    assert is_active(store, job.id)
    # When the sweeper runs
    outcome = sweep(runtime)
    # Then the job is failed with not_started, no longer active, and the finalizer ends it (credits settled)
    assert job.id in outcome["failed"]
    ended = wait_for(
        lambda: (j := store.get_job(job.id)) and j.credits_settled and j, what=f"job {job.id} to be finalized"
    )
    assert ended.status.is_terminal and ended.status == JobStatus.FAILED
    assert ended.error == "not_started" and ended.error_message
    assert not is_active(store, job.id)
    # And a second sweep leaves it as it is
    assert job.id not in sweep(runtime)["failed"]
    again = store.get_job(job.id)
    assert again is not None and (again.status, again.error) == (JobStatus.FAILED, "not_started")


def test_job_with_all_batches_counted_but_never_finalized_is_completed(
    store: JobStore, runtime: LocalRuntime, account: str
) -> None:
    # Given a one-batch job whose worker counted the batch but never started the finalizer
    job = new_job(store, account, created=timedelta(hours=1))
    assert store.claim_split(job.id, utcnow(), LONG_AGO) is not None
    assert store.finish_split(job.id, 2, 1, ["email"], 1) is not None
    batch = Batch(
        job_id=job.id, batch=0, first_row=0, column_index=0, header=["email"], rows=[["a@example.com"], ["b"]]
    )
    assert process_batch(batch, store=store, blobs=BlobStore(runtime.bucket), finalizer=_LostStart())
    counted = store.get_job(job.id)
    assert counted is not None and (counted.status, counted.batches_done) == (JobStatus.PROCESSING, 1)
    # When the sweeper runs
    outcome = sweep(runtime)
    # Then it starts the finalizer, which completes the job with its result
    assert job.id in outcome["finalized"]
    done = wait_for(
        lambda: (j := store.get_job(job.id)) and j.status.is_terminal and j.result_key and j,
        what=f"job {job.id} to complete",
    )
    assert (done.status, done.processed, done.error) == (JobStatus.COMPLETED, 2, None)
    assert BlobStore(runtime.bucket).head(str(done.result_key))
    assert not is_active(store, job.id)


def test_moving_and_new_jobs_are_left_alone(store: JobStore, runtime: LocalRuntime, account: str) -> None:
    # Given a job created just now and a job of two batches, an hour old, whose first batch was just counted
    fresh = new_job(store, account, created=timedelta(0))
    running = new_job(store, account, created=timedelta(hours=1))
    assert store.claim_split(running.id, utcnow(), LONG_AGO) is not None
    assert store.finish_split(running.id, 2, 2, ["email"], 1) is not None
    batch = Batch(job_id=running.id, batch=0, first_row=0, column_index=0, header=["email"], rows=[["a@example.com"]])
    assert process_batch(batch, store=store, blobs=BlobStore(runtime.bucket), finalizer=_LostStart())
    # When the sweeper runs
    outcome = sweep(runtime)
    # Then neither is touched: both keep their status and stay active
    assert {fresh.id, running.id}.isdisjoint(outcome["failed"] + outcome["finalized"])
    now_fresh, now_running = store.get_job(fresh.id), store.get_job(running.id)
    assert now_fresh is not None and (now_fresh.status, now_fresh.error) == (JobStatus.QUEUED, None)
    assert now_running is not None and (now_running.status, now_running.error) == (JobStatus.PROCESSING, None)
    assert is_active(store, fresh.id) and is_active(store, running.id)


def test_local_schedules_parse_rate_expressions_and_refuse_the_rest() -> None:
    # Given the rate expressions EventBridge accepts (singular for 1), the local runtime knows their interval
    assert [rate_seconds(e) for e in ("rate(1 minute)", "rate(5 minutes)", "rate(2 hours)", "rate(1 day)")] == [
        60,
        300,
        7200,
        86400,
    ]
    # And a cron expression is refused rather than silently never run
    with pytest.raises(ValueError, match="unsupported schedule"):
        rate_seconds("cron(0 12 * * ? *)")


def test_an_expired_upload_form_fails_its_job_only_when_the_bucket_has_no_file(
    store: JobStore, runtime: LocalRuntime, account: str
) -> None:
    # Given two presigned jobs whose forms expired long ago (the sweeper's 5-minute grace is over); one's file is in
    # the bucket (it landed before the expiry, while the splitter was busy), the other's never came
    def awaiting() -> Job:
        job = new_job(store, account, created=timedelta(hours=3))
        job.status, job.upload_expires_at = JobStatus.AWAITING_UPLOAD, stamp(timedelta(hours=2))
        job.source_key = upload_key(account, job.id)  # its own key: the splitter deletes an upload with no job
        store.ddb.update_item(
            TableName=store.table,
            Key={"pk": {"S": f"JOB#{job.id}"}, "sk": {"S": "JOB"}},
            UpdateExpression="SET #s = :s, upload_expires_at = :e, source_key = :k",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":s": {"S": "awaiting_upload"},
                ":e": {"S": job.upload_expires_at},
                ":k": {"S": job.source_key},
            },
        )
        return job

    landed, absent = awaiting(), awaiting()
    BlobStore(runtime.bucket).put(landed.source_key, b"email\r\na@example.com\r\n")
    # When the sweeper runs (it asks S3 with a HEAD on each upload key)
    outcome = sweep(runtime)
    # Then only the job without a file is failed upload_expired
    assert absent.id in outcome["failed"] and landed.id not in outcome["failed"]
    failed, waiting = store.get_job(absent.id), store.get_job(landed.id)
    assert failed is not None and (failed.status, failed.error) == (JobStatus.FAILED, "upload_expired")
    # (its file's S3 event may already have started the split: it is waiting or moving, not failed)
    assert waiting is not None and waiting.status != JobStatus.FAILED and waiting.error is None
