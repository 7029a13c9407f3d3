"""Batch markers against the emulation's DynamoDB: counted once, kept in sets of 100 batches on the job item (a commit
gets back only its own set); the countdown of pending batches says which commit was the last."""

from __future__ import annotations

import secrets

from functions.adapters.jobs import JobStore
from functions.logic.clock import utcnow
from functions.models import BatchCounts, Job, JobStatus

ONE = BatchCounts(processed=10, succeeded=9, invalid=1, credits=9)


def processing_job(store: JobStore) -> Job:
    job = Job(
        id="job_" + secrets.token_hex(10),
        account_id="acct_markers",
        type="email",
        status=JobStatus.QUEUED,
        source_key="uploads/acct_markers/x.csv",
        created_at=utcnow(),
    )
    assert store.put_new_job(job)
    claimed = store.claim_split(job.id, utcnow(), "2000-01-01T00:00:00.000Z")
    assert claimed is not None
    return claimed


def test_markers_are_counted_once_in_sets_of_a_hundred_and_the_last_commit_is_known(store: JobStore) -> None:
    # Given a job whose split is still running, and batches from three different sets counted in any order
    job = processing_job(store)
    assert [store.commit_batch(job.id, n, ONE) for n in (250, 0, 150)] == [-1, -2, -3]
    # Then a second delivery of a counted batch changes nothing
    assert store.commit_batch(job.id, 150, ONE) is None
    # And the job has every marker, from the three sets, and the counters of the three batches
    full = store.get_job(job.id)
    assert full is not None and full.done_batches == [0, 150, 250] and full.processed == 30
    item = store.ddb.get_item(TableName=store.table, Key={"pk": {"S": f"JOB#{job.id}"}, "sk": {"S": "JOB"}})["Item"]
    assert {name: item[name]["NS"] for name in item if name.startswith("done_")} == {
        "done_0": ["0"],
        "done_1": ["150"],
        "done_2": ["250"],
    }
    # When the split finishes with 4 batches (a second finish changes nothing)
    finished = store.finish_split(job.id, 40, 4, ["email"], 1)
    assert finished is not None and finished.batches_done == 3
    assert store.finish_split(job.id, 40, 4, ["email"], 1) is None
    # Then the fourth commit is the last: nothing is pending after it
    assert store.commit_batch(job.id, 399, ONE) == 0
    done = store.get_job(job.id)
    assert done is not None and done.done_batches == [0, 150, 250, 399] and done.batches_done == done.total_batches
