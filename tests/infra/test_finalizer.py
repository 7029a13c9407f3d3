"""The finalizer state machine: Standard, JSONPath, logged and traced, with the MarkFailed catch path."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template

from tests.infra.conftest import Synth


def _definition(synth: Synth) -> dict[str, Any]:
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    # Intrinsics (the function's ARN) sit inside JSON strings: a placeholder keeps the document parseable.
    return dict(json.loads("".join(p if isinstance(p, str) else "ARN" for p in parts)))


def test_state_machine_is_standard_logged_and_traced_as_configured(synth: Synth, template: Template) -> None:
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            # bulkapi:tracing governs X-Ray here as on the functions and the API stage
            "TracingConfiguration": {"Enabled": synth.config.tracing},
            "LoggingConfiguration": {
                "Level": "ALL",
                "IncludeExecutionData": True,
                "Destinations": [
                    {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": [template_log_group(template), "Arn"]}}}
                ],
            },
        },
    )


def template_log_group(template: Template) -> str:
    """The logical id of the state machine's log group."""
    groups = template.find_resources("AWS::Logs::LogGroup")
    (group_id,) = [lid for lid in groups if lid.startswith("FinalizerStateMachineLogs")]
    return group_id


def test_every_task_failure_is_caught_by_mark_failed_which_ends_the_execution_succeeded(synth: Synth) -> None:
    definition = _definition(synth)
    states = definition["States"]
    assert "QueryLanguage" not in definition or definition["QueryLanguage"] == "JSONPath"

    # Assemble and Complete: after their retries, any error goes to MarkFailed with the error in $.error
    for name in ("Assemble", "Complete"):
        assert states[name]["Type"] == "Task"
        assert {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "MarkFailed"} in states[name]["Catch"]
    # MarkFailed calls the finalizer's fail action with the error (it marks the job failed and emits the event)
    mark_failed = states["MarkFailed"]
    assert mark_failed["Parameters"] == {"action": "fail", "job_id.$": "$.job_id", "error.$": "$.error"}
    assert any("States.ALL" in r["ErrorEquals"] for r in mark_failed["Retry"])
    # A job marked failed is a clean end: the execution succeeds, so ExecutionsFailed (FinalizerFailed) counts only
    # executions where the finalizer itself broke (MarkFailed's retries exhausted, or a timeout)
    assert states[mark_failed["Next"]]["Type"] == "Succeed"
    assert not [name for name, state in states.items() if state["Type"] == "Fail"]
    assert definition["StartAt"] == "Assemble" and states["Complete"]["Next"] == "Done"


def _task_worst_case(state: dict[str, Any]) -> float:
    """One task's longest time: every attempt of every retrier runs to the task's timeout, plus the waits."""
    timeout = state["TimeoutSeconds"]
    attempts, waits = 1, 0.0
    for retrier in state.get("Retry", []):
        n = retrier.get("MaxAttempts", 3)
        attempts += n
        interval, rate = retrier.get("IntervalSeconds", 1), retrier.get("BackoffRate", 2.0)
        waits += sum(min(interval * rate**i, retrier.get("MaxDelaySeconds", float("inf"))) for i in range(n))
    return float(attempts * timeout + waits)


def _paths(states: dict[str, Any], name: str, seen: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every path from `name` to an end state, following Next and Catch edges."""
    if name in seen:
        raise AssertionError(f"loop through {name}")
    state = states[name]
    following = [state["Next"]] if "Next" in state else []
    following += [c["Next"] for c in state.get("Catch", [])]
    if not following:
        return [(*seen, name)]
    return [p for nxt in dict.fromkeys(following) for p in _paths(states, nxt, (*seen, name))]


def test_every_task_has_a_timeout_and_the_worst_path_fits_in_the_machine_timeout(synth: Synth) -> None:
    definition = _definition(synth)
    states = definition["States"]
    machine_timeout = definition["TimeoutSeconds"]
    tasks = {name for name, s in states.items() if s["Type"] == "Task"}
    # Every task has a timeout of its own (a task without one may wait for the whole machine timeout)
    assert tasks and all(isinstance(states[t].get("TimeoutSeconds"), int) for t in tasks)
    # Every path (success and catch edges), every task retried to its last attempt, ends before the machine times out
    paths = _paths(states, definition["StartAt"])
    assert any("MarkFailed" in p for p in paths)
    worst = max(sum(_task_worst_case(states[s]) for s in p if s in tasks) for p in paths)
    assert worst < machine_timeout
    # And the path that ends with MarkFailed includes MarkFailed's own retries: it gets its time
    through_mark_failed = [p for p in paths if p[-2:] == ("MarkFailed", "JobMarkedFailed")]
    assert through_mark_failed and all(
        sum(_task_worst_case(states[s]) for s in p if s in tasks) < machine_timeout for p in through_mark_failed
    )


def test_assemble_outlasts_the_function_so_retries_never_overlap_a_running_attempt(synth: Synth) -> None:
    fn = synth.template["Resources"][synth.logical_id(synth.stack.finalizer.function)]["Properties"]
    assert _definition(synth)["States"]["Assemble"]["TimeoutSeconds"] > fn["Timeout"]


def test_state_machine_logs_go_to_a_vended_logs_group_named_after_the_stack(synth: Synth) -> None:
    group = synth.template["Resources"][synth.logical_id(synth.stack.finalizer.log_group)]["Properties"]
    assert group["LogGroupName"] == f"/aws/vendedlogs/states/{synth.stack.stack_name}-finalizer"
