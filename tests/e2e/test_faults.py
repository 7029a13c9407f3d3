"""Faults injected into `bulkapi serve`: a function process killed mid-job, a batch that always fails, functions past
their memory size and timeout, a webhook sender that always throws."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from functions.adapters.jobs import JobStore
from local.resources import local_name
from local.template import load_template
from tests.e2e.conftest import (
    Account,
    Server,
    children,
    new_account,
    post_job,
    start_server,
    status,
    stop_server,
    wait_ended,
)
from tests.helpers import email_csv, parse_result, wait_for

pytestmark = pytest.mark.e2e

POISON = 2  # work batch number that fails on every delivery (BULKAPI_LOCAL_POISON_BATCH)
ROWS_PER_BATCH = 100


@pytest.fixture(scope="module")
def fault_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Batches of 100 rows; batch 2 of every job fails every time it is delivered."""
    srv = start_server(
        tmp_path_factory.mktemp("faults"),
        BULKAPI_ROWS_PER_BATCH=str(ROWS_PER_BATCH),
        BULKAPI_LOCAL_POISON_BATCH=str(POISON),
    )
    yield srv
    stop_server(srv)


def function_processes(server: Server, function: str = "worker") -> list[int]:
    """The server's processes of one function: named fn-<function>, forked from the fork server that the server
    started (the emulation is a plain subprocess)."""
    forkservers = [
        pid for pid in children(server.process.pid) if b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    found = []
    for pid in (child for forkserver in forkservers for child in children(forkserver)):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == f"fn-{function}":
                found.append(pid)
    return sorted(found)


def test_killed_function_process_is_replaced_and_the_job_completes_exactly(fault_server: Server) -> None:
    # Given a job of 3,000 rows (30 batches; every 100th address invalid) of an account with 10,000 credits
    account = new_account(fault_server, 10_000)
    session = fault_server.session(account.key)
    before = function_processes(fault_server)
    assert len(before) == 2
    job_id = post_job(session, fault_server, email_csv(3_000, bad_every=100)).json()["id"]
    wait_for(lambda: status(session, fault_server, job_id)["processed"] > 0, timeout=60, interval=0.02, what="work")

    # When one worker process is killed mid-job (it wedged every later invocation with BrokenProcessPool)
    os.kill(before[0], signal.SIGKILL)

    # Then the job completes with exact counters: the poison batch's rows failed, nothing else lost or doubled
    final = wait_ended(session, fault_server, job_id, timeout=120, interval=0.2)
    assert final["status"] == "completed"
    # 3,000 rows: 30 invalid, of which row 299 lies in the poison batch (rows 200-299) and counts as failed there
    assert (final["processed"], final["failed"], final["invalid"], final["succeeded"]) == (3_000, 100, 29, 2_871)
    assert final["credits_used"] == 2_871
    # And only ok rows were charged: the reservation's unused part came back
    wait_for(lambda: account.balance == 10_000 - 2_871, timeout=30, what=f"balance {account.balance}")
    # And the result has every row once, in order; the poison batch's rows are error / processing_failed
    rows = parse_result(session.get(f"{fault_server.base_url}/api/bulk-jobs/download", params={"id": job_id}).content)
    assert [r["Row"] for r in rows] == [str(i) for i in range(3_000)]
    assert {(r["status"], r["error"]) for r in rows[200:300]} == {("error", "processing_failed")}
    assert all(r["status"] in ("ok", "invalid") for r in rows[:200] + rows[300:])
    # And the dead process was replaced: two worker processes again, and a new job runs to the end
    assert len(function_processes(fault_server)) == 2 and before[0] not in function_processes(fault_server)
    again = post_job(session, fault_server, email_csv(50)).json()["id"]
    done = wait_for(
        lambda: (s := status(session, fault_server, again))["status"] == "completed" and s, timeout=60, what="job 2"
    )
    assert done["processed"] == 50


# Each function's first invocation of its kind gets a fault: the splitter allocates past its MemorySize, the worker
# sleeps past its Timeout (scaled by 0.2: 24 s), the webhook sender raises on every event, the stream function's
# first stream sleeps past its Timeout (60 s scaled: 12 s). The factor scales every
# function's timeout: at 0.2 the api still has 5.8 s and the authorizer 2 s, plenty on a loaded machine.
LIMIT_FAULTS = "splitter:allocate:1,worker:sleep:1,webhooks:raise,stream:sleep:1"
TIMEOUT_FACTOR = 0.2


@dataclass
class LimitedJob:
    """One job through a server whose functions hit their limits, as it ended."""

    server: Server
    account: Account
    job_id: str
    final: dict[str, Any]

    def log(self) -> str:
        """What the server printed."""
        assert self.server.log_path is not None
        return self.server.log_path.read_text()


@pytest.fixture(scope="module")
def limited_job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LimitedJob]:
    """A 300-row job (3 batches) on a server with LIMIT_FAULTS, run to its end."""
    srv = start_server(
        tmp_path_factory.mktemp("limits"),
        BULKAPI_ROWS_PER_BATCH=str(ROWS_PER_BATCH),
        BULKAPI_LOCAL_FAULT=LIMIT_FAULTS,
        BULKAPI_LOCAL_TIMEOUT_FACTOR=str(TIMEOUT_FACTOR),
    )
    try:
        account = new_account(srv, 1_000)
        session = srv.session(account.key)
        job_id = post_job(session, srv, email_csv(300)).json()["id"]
        final = wait_ended(session, srv, job_id, timeout=180, interval=0.2)
        yield LimitedJob(srv, account, job_id, final)
    finally:
        stop_server(srv)


def _exact(job: LimitedJob) -> None:
    assert job.final["status"] == "completed", job.final
    assert (job.final["processed"], job.final["succeeded"], job.final["failed"]) == (300, 300, 0)
    assert job.final["credits_used"] == 300
    wait_for(lambda: job.account.balance == 1_000 - 300, timeout=30, what=f"balance {job.account.balance}")


@pytest.mark.slow
def test_a_splitter_killed_past_its_memory_size_is_retried_as_an_asynchronous_event(limited_job: LimitedJob) -> None:
    # Given the splitter's first invocation allocates past its MemorySize (1024 MB)
    # Then it was killed as Lambda kills it (Runtime.OutOfMemory)
    log = limited_job.log()
    assert re.search(r"splitter\S*: Runtime\.OutOfMemory: .*resident \d+ MB > MemorySize 1024 MB", log), log[-3000:]
    # And S3's event was retried (an asynchronous invocation's retry), so the job completed exactly
    _exact(limited_job)


@pytest.mark.slow
def test_a_worker_past_its_timeout_is_killed_and_its_batch_comes_back(limited_job: LimitedJob) -> None:
    # Given the worker's first invocation sleeps past its Timeout (120 s, scaled by 0.2)
    # Then it was killed at 24 s as Lambda kills it
    log = limited_job.log()
    assert re.search(r"worker\S*: Task timed out after 24\.00 seconds", log), log[-3000:]
    # And its batch came back from the queue and was processed: no row failed, none counted twice
    _exact(limited_job)


@pytest.mark.slow
def test_a_sender_that_always_throws_leaves_the_event_where_its_alarm_counts_it(limited_job: LimitedJob) -> None:
    # Given the webhook sender raises on every event: the job's bulk_job.completed event failed 3 times
    # (Lambda's asynchronous retries); the queue the WebhookDlqDepth alarm watches, named as the template names it
    resources = load_template()["Resources"]
    alarm = next(r for lid, r in resources.items() if lid.startswith("ObservabilityWebhookDlqDepth"))
    queue_id = next(d["Value"]["Fn::GetAtt"][0] for d in alarm["Properties"]["Dimensions"] if d["Name"] == "QueueName")
    sqs = limited_job.server.aws("sqs")
    url = sqs.get_queue_url(QueueName=local_name(queue_id))["QueueUrl"]

    def depth() -> int:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    # Then the alarm's metric counts it (the event is not dropped)
    wait_for(lambda: depth() >= 1, timeout=60, what="the event in the webhook DLQ")
    # And the message is what Lambda puts in a function's dead-letter queue: the event itself, ready to replay as it
    # is, with the error in the message attributes
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["All"]
    ).get("Messages", [])
    message = next(m for m in messages if json.loads(m["Body"])["detail"]["id"] == limited_job.job_id)
    event = json.loads(message["Body"])
    assert (event["source"], event["detail-type"]) == ("bulkapi", "bulk_job.completed")
    assert event["detail"]["status"] == "completed"
    attributes = {name: a["StringValue"] for name, a in message["MessageAttributes"].items()}
    assert "injected fault" in attributes["ErrorMessage"]
    assert attributes["ErrorCode"] == "200" and attributes["RequestID"]
    # And it got there after Lambda's 2 retries, as the sender's DeadLetterConfig says (no on-failure destination)
    log = limited_job.log()
    assert re.search(
        r"asynchronous invocation failed 3 times \(RetriesExhausted, RuntimeError\); the event went to its "
        r"dead-letter arn:aws:sqs:\S+:" + re.escape(local_name(queue_id)),
        log,
    ), log[-3000:]


@pytest.mark.slow
def test_a_finalizer_task_past_its_timeout_is_an_error_step_functions_retries(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Given a server whose finalizer's first invocation sleeps past its Timeout (900 s, scaled by 0.02: 18 s); the
    # job comes in as a drop, so no request meets the api's 0.58 s
    srv = start_server(
        tmp_path_factory.mktemp("finalizer-timeout"),
        BULKAPI_LOCAL_FAULT="finalizer:sleep:1",
        BULKAPI_LOCAL_TIMEOUT_FACTOR="0.02",
    )
    try:
        account = new_account(srv, 1_000)
        srv.aws("s3").put_object(Bucket=srv.bucket, Key=f"drop/{account.id}/email/leads.csv", Body=email_csv(20))
        store = JobStore(srv.table, client=srv.aws("dynamodb"))

        def ended() -> Any:
            jobs, _ = store.list_jobs(account.id, limit=1, cursor=None, status=None)
            return jobs and jobs[0].status.is_terminal and jobs[0]

        # When the finalizer's first Assemble task is killed at its timeout
        job = wait_for(ended, timeout=180, interval=0.5, what="the dropped job to end")

        # Then Step Functions saw the task fail and retried it (its Retry on States.ALL): the job completed exactly
        assert srv.log_path is not None
        log = srv.log_path.read_text()
        assert re.search(r"finalizer\S*: Task timed out after 18\.00 seconds", log), log[-3000:]
        assert (job.status.value, job.processed, job.succeeded) == ("completed", 20, 20)
    finally:
        stop_server(srv)


def stream_processes(server: Server) -> list[int]:
    """The stream function's execution environments: processes of their own under the server."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == server.process.pid and fields[0] != "Z" and b"local.stream_function" in cmdline:
            found.append(int(stat.parent.name))
    return sorted(found)


def lookup(server: Server, key: str, emails: list[str]) -> requests.Response:
    return requests.post(
        f"{server.base_url}/api/bulk-lookup",
        json={"emails": emails},
        headers={"Authorization": f"Bearer {key}", "Accept": "text/event-stream"},
        timeout=120,
    )


@pytest.mark.slow
def test_a_stream_past_its_timeout_is_killed_and_the_next_stream_is_served(limited_job: LimitedJob) -> None:
    # Given the stream function runs in processes of its own, and its first stream sleeps past its Timeout
    srv, account = limited_job.server, limited_job.account
    before = stream_processes(srv)
    assert before and srv.process.pid not in before
    # When a client streams a lookup
    started = time.monotonic()
    cut = lookup(srv, account.key, ["ada@example.com"])
    # Then it is killed at its Timeout (60 s scaled by 0.2) before its first byte: API Gateway's 504, the log says so
    assert cut.status_code == 504 and cut.json()["code"] == "gateway_timeout", cut.text
    assert 11 <= time.monotonic() - started < 40
    assert re.search(r"stream\S*: Task timed out after 12\.00 seconds; its environment was killed", limited_job.log())
    # And a new environment serves the next stream to its end
    served = lookup(srv, account.key, ["ada@example.com", "grace@example.com"])
    assert served.status_code == 200 and served.text.rstrip().endswith("data: [DONE]"), served.text[-500:]
    assert before[0] not in stream_processes(srv)


@pytest.mark.slow
def test_a_stream_past_its_memory_size_is_killed(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Given a server whose stream function's first stream allocates past its MemorySize (1024 MB)
    srv = start_server(tmp_path_factory.mktemp("stream-memory"), BULKAPI_LOCAL_FAULT="stream:allocate:1")
    try:
        account = new_account(srv, 100)
        # When a client streams a lookup, then it is killed (502, as API Gateway answers a function that died)
        killed = lookup(srv, account.key, ["ada@example.com"])
        assert killed.status_code == 502 and killed.json()["code"] == "internal_error", killed.text
        assert srv.log_path is not None
        assert re.search(r"Runtime\.OutOfMemory \(resident \d+ MB > MemorySize 1024 MB\)", srv.log_path.read_text())
        # And the next stream is served by a new environment; nothing was charged for the killed one's unsent rows
        served = lookup(srv, account.key, ["ada@example.com"])
        assert served.status_code == 200 and served.text.rstrip().endswith("data: [DONE]"), served.text[-500:]
        wait_for(lambda: account.balance == 99, timeout=30, what=f"balance {account.balance}")
    finally:
        stop_server(srv)
