"""What the FinalizerFailed alarm counts: executions the finalizer itself could not finish, not jobs it ended failed.

The alarm reads the state machine's ExecutionsFailed and ExecutionsTimedOut. A job that MarkFailed ends `failed`
must leave its execution SUCCEEDED, or every bad file would page someone (issue 20). This runs the deployed
definition in moto's Step Functions executor, through the local runtime.
"""

from __future__ import annotations

from typing import Any

import pytest

from functions.adapters.jobs import JobStore
from functions.models import JobStatus
from local.runtime import LocalRuntime
from tests.helpers import email_csv, wait_for


@pytest.mark.slow
def test_a_job_the_finalizer_marks_failed_ends_its_execution_succeeded(
    api: Any, store: JobStore, runtime: LocalRuntime
) -> None:
    # Given a job whose result cannot be assembled (every Assemble attempt fails), so the Catch sends it to MarkFailed
    assert runtime.invoker is not None
    finalizer = runtime.function_id("functions.handlers.finalizer.lambda_handler")
    doomed: set[str] = set()

    def assemble_fails(event: dict[str, Any]) -> None:
        if event.get("action") == "assemble" and event.get("job_id") in doomed:
            raise RuntimeError("injected: the result cannot be assembled")

    runtime.invoker.faults[finalizer] = assemble_fails
    try:
        resp = api.post(
            f"{api.base}/api/bulk-jobs",
            files={"file": ("leads.csv", email_csv(20), "text/csv")},
            data={"type": "email"},
            timeout=30,
        )
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["id"]
        doomed.add(job_id)
        # When the finalizer runs: Assemble fails twice (one retry), MarkFailed ends the job failed
        job = wait_for(
            lambda: (j := store.get_job(job_id)) and j.status.is_terminal and j,
            timeout=90,
            what="the job to end",
        )
        assert job.status == JobStatus.FAILED
        sfn = runtime.client("stepfunctions")
        arn = next(iter(runtime.topology.state_machines.values()))

        def execution() -> dict[str, Any] | None:
            found = [e for e in sfn.list_executions(stateMachineArn=arn)["executions"] if e["name"] == job_id]
            return found[0] if found and found[0]["status"] != "RUNNING" else None

        ended = wait_for(execution, timeout=60, what="the finalizer's execution to end")
        # Then the execution SUCCEEDED: ExecutionsFailed (FinalizerFailed) does not count a job ended cleanly
        assert ended["status"] == "SUCCEEDED"
        history = sfn.get_execution_history(executionArn=ended["executionArn"])["events"]
        entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
        assert "MarkFailed" in entered and entered[-1] == "JobMarkedFailed"
    finally:
        runtime.invoker.faults.pop(finalizer, None)
