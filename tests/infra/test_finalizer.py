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


def test_state_machine_is_standard_logged_and_traced(template: Template) -> None:
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "TracingConfiguration": {"Enabled": True},
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


def test_every_task_failure_is_caught_by_mark_failed_which_ends_in_a_fail_state(synth: Synth) -> None:
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
    assert states[mark_failed["Next"]]["Type"] == "Fail"
    assert definition["StartAt"] == "Assemble" and states["Complete"]["Next"] == "Done"
