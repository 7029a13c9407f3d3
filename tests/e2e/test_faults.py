"""Faults injected into `bulkapi serve`: a function process killed mid-job, a batch that always fails."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Server, new_account, post_job, start_server, status, stop_server, wait_ended
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
    """The server's processes of one function (multiprocessing children named fn-<function>; the emulation is a
    plain subprocess)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
            comm = (stat.parent / "comm").read_text().strip()
        except OSError:
            continue
        if (
            int(fields[1]) == server.process.pid
            and fields[0] != "Z"
            and b"spawn_main" in cmdline
            and comm == f"fn-{function}"
        ):
            found.append(int(stat.parent.name))
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
