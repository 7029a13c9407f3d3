"""The handlers against real moto resources, wired as the stack declares (S3, splitter, SQS, worker, finalizer)."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from functions.adapters.blobs import BlobStore
from functions.adapters.jobs import JobStore
from functions.adapters.messaging import FinalizerStarter
from functions.handlers import worker as worker_handler
from functions.logic.clock import utcnow
from functions.models import Batch, Job, JobStatus
from local.lambdas import WORKER
from local.runtime import LocalRuntime
from tests.helpers import email_csv, parse_result, wait_for


def create(api: Any, body: bytes, job_type: str = "email", **fields: str) -> dict[str, Any]:
    resp = api.post(
        f"{api.base}/api/bulk-jobs",
        files={"file": ("leads.csv", body, "text/csv")},
        data={"type": job_type, **fields},
        timeout=30,
    )
    assert resp.status_code == 202, resp.text
    return dict(resp.json())


def wait_terminal(store: JobStore, job_id: str, timeout: float = 60) -> Job:
    return wait_for(
        lambda: (j := store.get_job(job_id)) and j.status.is_terminal and j.result_key and j,
        timeout=timeout,
        what=f"job {job_id} to end",
    )


def download(api: Any, job_id: str) -> list[dict[str, str]]:
    resp = api.get(f"{api.base}/api/bulk-jobs/download", params={"id": job_id}, timeout=30)
    assert resp.status_code == 200, resp.text
    return parse_result(resp.content)


def fn_id(runtime: LocalRuntime, name: str) -> str:
    return runtime.function_id(f"functions.handlers.{name}.lambda_handler")


def sqs_event(bodies: list[str], prefix: str = "m") -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"{prefix}{i}",
                "receiptHandle": f"r{i}",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:work",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


class FlakyParts:
    """The worker's blob store, failing the part write of chosen (job, batch) pairs: `fail[(job_id, n)] = times`
    (-1 = always); `calls` counts the attempts. A failed write fails the batch's record, as any AWS error would."""

    def __init__(self, real: Any, control: dict[str, Any]) -> None:
        self.real, self.control, self.lock = real, control, threading.Lock()

    def _attempt(self, key: str) -> None:
        _, job_id, name = key.split("/")
        pair = (job_id, int(name.removesuffix(".csv")))
        with self.lock:
            self.control["calls"][pair] = self.control["calls"].get(pair, 0) + 1
            left = self.control["fail"].get(pair, 0)
            if left:
                self.control["fail"][pair] = left - 1 if left > 0 else left
        if left:
            raise RuntimeError(f"injected failure in batch {pair[1]}")

    def put(self, key: str, body: bytes, **options: Any) -> None:
        self._attempt(key)
        self.real.put(key, body, **options)

    def put_new(self, key: str, body: bytes, **options: Any) -> bool:
        # The worker's write after a commit it trusts (the job not read first): failed the same way.
        self._attempt(key)
        return bool(self.real.put_new(key, body, **options))


@pytest.fixture()
def flaky_batches(runtime: LocalRuntime) -> Iterator[dict[str, Any]]:
    """The worker composed with a blob store that fails chosen batches (its Deps, nothing patched)."""
    assert runtime.invoker is not None
    control: dict[str, Any] = {"fail": {}, "calls": {}}
    worker_id = fn_id(runtime, "worker")
    real = worker_handler.lambda_handler.deps(runtime.function_env(WORKER))
    flaky = dataclasses.replace(real, blobs=FlakyParts(real.blobs, control))
    runtime.invoker.compose(worker_id, worker_handler.lambda_handler.with_deps(flaky))
    yield control
    runtime.invoker.compose(worker_id, None)


def test_create_stores_the_upload_and_a_job_that_completes(api: Any, store: JobStore, runtime: LocalRuntime) -> None:
    # Given a CSV of 250 leads, one in ten with an invalid address
    body = email_csv(250, bad_every=10)
    # When it is posted as an email job
    created = create(api, body)
    # Then the job answers queued with its row count, the upload is in S3 under uploads/<account>/<job>.csv
    assert created["status"] == "queued" and created["total_rows"] == 250 and created["id"].startswith("job_")
    job = wait_terminal(store, created["id"])
    assert BlobStore(runtime.bucket).get(job.source_key) == body
    # and the job completes with exact counts and credits for valid rows only
    assert (job.status, job.processed, job.succeeded, job.invalid, job.failed) == ("completed", 250, 225, 25, 0)
    assert job.credits_used == 225


def test_duplicate_s3_event_does_not_split_twice(api: Any, store: JobStore, runtime: LocalRuntime) -> None:
    # Given a job that was split and completed
    job = wait_terminal(store, create(api, email_csv(300))["id"])
    event = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": utcnow(),
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "x"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "x"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "c",
                    "bucket": {"name": runtime.bucket, "arn": "a", "ownerIdentity": {"principalId": "x"}},
                    "object": {"key": job.source_key, "size": 1, "eTag": "e", "sequencer": "01"},
                },
            }
        ]
    }
    # When S3 delivers the same ObjectCreated event again
    assert runtime.invoker is not None
    outcome = runtime.invoker.invoke(fn_id(runtime, "splitter"), event)
    # Then the splitter skips it and nothing moves
    assert outcome == {"outcomes": ["skipped"]}
    again = store.get_job(job.id)
    assert again is not None and (again.processed, again.batches_done, again.status) == (300, 3, "completed")


def test_split_is_claimed_once(store: JobStore, account: str) -> None:
    # Given a queued job
    job = Job(
        id="job_claimtest0000000001",
        account_id=account,
        type="email",
        status=JobStatus.QUEUED,
        source_key="uploads/x.csv",
        created_at=utcnow(),
    )
    assert store.put_new_job(job)
    # When two splitters try to claim it, the second with the lease not expired
    first = store.claim_split(job.id, utcnow(), "2000-01-01T00:00:00Z")
    second = store.claim_split(job.id, utcnow(), "2000-01-01T00:00:00Z")
    # Then only the first gets it
    assert first is not None and first.status == "processing"
    assert second is None


def test_same_message_twice_moves_counters_once(store: JobStore, runtime: LocalRuntime, account: str) -> None:
    # Given a processing job of two batches
    job = Job(
        id="job_duplicatemsg000001",
        account_id=account,
        type="email",
        status=JobStatus.QUEUED,
        source_key="uploads/dup.csv",
        created_at=utcnow(),
        header=["email"],
    )
    store.put_new_job(job)
    store.claim_split(job.id, utcnow(), "2000-01-01T00:00:00Z")
    store.finish_split(job.id, 5, 2, ["email"], 1)
    rows = [["a@example.com"], ["b@example.com"], ["bad"]]
    batch0 = Batch(job_id=job.id, batch=0, first_row=0, column_index=0, header=["email"], rows=rows)
    assert runtime.invoker is not None
    worker = fn_id(runtime, "worker")
    # When batch 0 is delivered twice (and once more inside one event)
    for _ in range(2):
        result = runtime.invoker.invoke(worker, sqs_event([batch0.model_dump_json()] * 2))
        assert result == {"batchItemFailures": []}
    # Then it is counted once
    counted = store.get_job(job.id)
    assert counted is not None
    assert (counted.processed, counted.succeeded, counted.invalid, counted.batches_done) == (3, 2, 1, 1)
    assert counted.credits_used == 2
    # And when the last batch arrives the finalizer completes the job with all five rows in order
    batch1 = Batch(
        job_id=job.id,
        batch=1,
        first_row=3,
        column_index=0,
        header=["email"],
        rows=[["c@example.com"], ["d@example.com"]],
    )
    BlobStore(runtime.bucket).put("uploads/dup.csv", b"email\r\n")
    runtime.invoker.invoke(worker, sqs_event([batch1.model_dump_json()]))
    done = wait_terminal(store, job.id)
    assert (done.status, done.processed) == ("completed", 5)
    assert done.result_key is not None
    rows_out = parse_result(BlobStore(runtime.bucket).get(done.result_key))
    assert [r["email"] for r in rows_out] == ["a@example.com", "b@example.com", "bad", "c@example.com", "d@example.com"]


def test_worker_failing_mid_batch_is_retried_and_counts_stay_exact(
    api: Any, store: JobStore, flaky_batches: dict[str, Any]
) -> None:
    # Given a 1,000-row job (10 batches of 100) whose batch 2 fails on its first delivery
    body = email_csv(1000, bad_every=50)
    created = create(api, body)
    flaky_batches["fail"][(created["id"], 2)] = 1
    # When it runs
    job = wait_terminal(store, created["id"])
    # Then batch 2 was retried and every count is exact
    assert flaky_batches["calls"][(created["id"], 2)] >= 2
    assert (job.status, job.processed, job.succeeded, job.invalid, job.failed) == ("completed", 1000, 980, 20, 0)
    rows = download(api, job.id)
    assert [r["Row"] for r in rows] == [str(i) for i in range(1000)]
    # And the summary counts each row once, by its verdict in the result
    assert job.summary == {"validity": {"valid": 980, "risky": 0, "invalid": 20, "unknown": 0}}


def test_batch_exhausting_retries_goes_to_dlq_and_job_still_ends(
    api: Any, store: JobStore, flaky_batches: dict[str, Any]
) -> None:
    # Given a job whose batch 1 always fails
    created = create(api, email_csv(300))
    flaky_batches["fail"][(created["id"], 1)] = -1
    # When its retries are exhausted (maxReceiveCount from the template), the message lands in the DLQ
    job = wait_terminal(store, created["id"], timeout=90)
    # Then the job still ends, with that batch's rows counted failed and present as errors, in order
    assert (job.status, job.processed, job.succeeded, job.failed) == ("completed", 300, 200, 100)
    assert job.credits_used == 200
    rows = download(api, job.id)
    assert [r["Row"] for r in rows] == [str(i) for i in range(300)]
    assert {r["status"] for r in rows[100:200]} == {"error"}
    assert {r["error"] for r in rows[100:200]} == {"processing_failed"}
    # And the summary has them as unknown: no verdict was reached, yet every row is counted
    assert job.summary == {"validity": {"valid": 200, "risky": 0, "invalid": 0, "unknown": 100}}
    assert flaky_batches["calls"][(created["id"], 1)] >= 5


def test_two_finalizer_starts_give_one_result_and_one_event(api: Any, store: JobStore, runtime: LocalRuntime) -> None:
    # Given a recorder of the events the webhook sender receives
    seen: list[dict[str, Any]] = []
    assert runtime.invoker is not None
    webhooks = fn_id(runtime, "webhooks")
    runtime.invoker.faults[webhooks] = lambda event: seen.append(event)
    try:
        job = wait_terminal(store, create(api, email_csv(120))["id"])
        wait_for(lambda: [e for e in seen if e["detail"]["id"] == job.id], what="the job's event")
        sfn = runtime.client("stepfunctions")
        arn = next(iter(runtime.topology.state_machines.values()))
        # (The job is terminal before its execution ends: the Complete step still deletes the part files after the
        # status and the event. While it runs, a start with the same name and input is the same execution.)
        wait_for(
            lambda: all(
                e["status"] != "RUNNING"
                for e in sfn.list_executions(stateMachineArn=arn)["executions"]
                if e["name"] == job.id
            ),
            what="the finalizer's execution to end",
        )
        # When the finalizer is started a second time for the same job
        started = FinalizerStarter(arn).start(job.id)
        # Then it is refused as a duplicate: one execution, one result object, one event
        assert started is False
        executions = [e for e in sfn.list_executions(stateMachineArn=arn)["executions"] if e["name"] == job.id]
        assert len(executions) == 1
        s3 = runtime.client("s3")
        listed = s3.list_objects_v2(Bucket=runtime.bucket, Prefix=f"results/{job.account_id}/{job.id}")
        assert listed["KeyCount"] == 1
        events = [e for e in seen if e["detail"]["id"] == job.id]
        assert len(events) == 1
        assert events[0]["detail-type"] == "bulk_job.completed"
        assert events[0]["detail"]["processed"] == 120 and events[0]["detail"]["result_key"] == job.result_key
    finally:
        runtime.invoker.faults.pop(webhooks, None)


def test_step_functions_tasks_reach_the_real_handler_with_lambda_error_shape(runtime: LocalRuntime) -> None:
    # Given the moto Lambda patch that routes invocations to in-process handlers
    lam = runtime.client("lambda")
    name = runtime.topology.functions[fn_id(runtime, "finalizer")].name
    # When the finalizer function is invoked for a job that does not exist
    resp = lam.invoke(FunctionName=name, Payload=json.dumps({"action": "assemble", "job_id": "job_missing"}))
    # Then the error comes back the way Lambda reports it (so Retry/Catch see its name)
    assert resp.get("FunctionError")
    payload = json.loads(resp["Payload"].read())
    assert payload["errorType"] == "NotFoundError"
