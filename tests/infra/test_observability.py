"""Dashboard and alarms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match, Template

from infra.observability import RUNBOOK_PREFIX
from tests.infra.conftest import Synth, synthesize

README = Path(__file__).resolve().parents[2] / "README.md"


def test_alarms_watch_dead_letters_worker_errors_and_old_work(synth: Synth, template: Template) -> None:
    pipeline = synth.stack.pipeline

    def queue_alarm(queue_id: str, metric: str, threshold: int) -> None:
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "Namespace": "AWS/SQS",
                "MetricName": metric,
                "Threshold": threshold,
                "ComparisonOperator": "GreaterThanThreshold",
                "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}],
            },
        )

    queue_alarm(synth.logical_id(pipeline.dlq), "ApproximateNumberOfMessagesVisible", 0)
    queue_alarm(synth.logical_id(synth.stack.webhooks.dlq), "ApproximateNumberOfMessagesVisible", 0)
    queue_alarm(synth.logical_id(synth.stack.downloads.dlq), "ApproximateNumberOfMessagesVisible", 0)
    queue_alarm(
        synth.logical_id(pipeline.queue), "ApproximateAgeOfOldestMessage", synth.config.work_age_alarm_minutes * 60
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/Lambda",
            "MetricName": "Errors",
            "Threshold": 0,
            "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": synth.logical_id(pipeline.worker)}}],
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "bulkapi",
            "MetricName": "RowsDeadLettered",
            "Dimensions": [{"Name": "service", "Value": "bulkapi"}],
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"Metrics": Match.array_with([Match.object_like({"Expression": "failed + timedout"})])},
    )


def test_dashboard_shows_jobs_rows_queues_and_errors(synth: Synth) -> None:
    (dashboard,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (
        "JobsCreated",
        "JobsCompleted",
        "JobsFailed",
        "RowsProcessed",
        "CreditsUsed",
        "ApproximateNumberOfMessagesVisible",
        "Duration",
        "Errors",
        "5XXError",
    ):
        assert metric in body, metric
    assert "PERIOD(rows)" in body


def _alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in synth.resources("AWS::CloudWatch::Alarm").items()}


def test_every_alarm_notifies_the_stacks_topic_on_alarm_and_on_ok(synth: Synth) -> None:
    topic = {"Ref": synth.logical_id(synth.stack.observability.topic)}
    alarms = _alarms(synth)
    assert alarms
    for lid, alarm in alarms.items():
        assert topic in alarm.get("AlarmActions", []), lid
        assert topic in alarm.get("OKActions", []), lid


def test_every_alarm_description_ends_with_a_runbook_line(synth: Synth) -> None:
    for lid, alarm in _alarms(synth).items():
        what, _, runbook = alarm["AlarmDescription"].partition(RUNBOOK_PREFIX)
        assert what.strip() and len(runbook.strip()) > 20, lid


def test_every_function_has_an_errors_alarm(synth: Synth) -> None:
    watched = {
        alarm["Dimensions"][0]["Value"]["Ref"]
        for alarm in _alarms(synth).values()
        if alarm.get("Namespace") == "AWS/Lambda" and alarm.get("MetricName") == "Errors"
    }
    ours = {synth.logical_id(fn) for fn in synth.stack.functions.by_handler.values()}
    assert ours and ours <= watched


def test_every_dead_letter_queue_has_a_depth_alarm(synth: Synth) -> None:
    resources = synth.template["Resources"]
    # Given every queue something dead-letters into: SQS redrive policies and EventBridge targets' DLQs
    dlqs = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in synth.resources("AWS::SQS::Queue").values()
        if "RedrivePolicy" in q["Properties"]
    }
    dlqs |= {
        target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
        for rule in synth.resources("AWS::Events::Rule").values()
        for target in rule["Properties"].get("Targets", [])
        if "DeadLetterConfig" in target
    }
    # and Lambda's on-failure destinations of asynchronous invocations
    dlqs |= {
        c["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        for c in synth.resources("AWS::Lambda::EventInvokeConfig").values()
        if "OnFailure" in c["Properties"].get("DestinationConfig", {})
    }
    assert len(dlqs) >= 4 and all(resources[q]["Type"] == "AWS::SQS::Queue" for q in dlqs)
    # Then each has an alarm on its visible messages
    watched = {
        alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for alarm in _alarms(synth).values()
        if alarm.get("Namespace") == "AWS/SQS" and alarm.get("MetricName") == "ApproximateNumberOfMessagesVisible"
    }
    assert dlqs <= watched


def test_api_5xx_raises_an_alarm(synth: Synth) -> None:
    api_name = synth.template["Resources"][synth.logical_id(synth.stack.api.rest_api)]["Properties"]["Name"]
    assert any(
        a.get("Namespace") == "AWS/ApiGateway"
        and a.get("MetricName") == "5XXError"
        and {"Name": "ApiName", "Value": api_name} in a["Dimensions"]
        for a in _alarms(synth).values()
    )


def test_cloudwatch_may_publish_to_the_topic_only_over_tls_and_from_this_account(synth: Synth) -> None:
    topic_id = synth.logical_id(synth.stack.observability.topic)
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.resources("AWS::SNS::TopicPolicy").values()
        if {"Ref": topic_id} in p["Properties"]["Topics"]
    ]
    allow = [s for s in policy if s["Effect"] == "Allow"]
    assert [s["Principal"] for s in allow] == [{"Service": "cloudwatch.amazonaws.com"}]
    assert allow[0]["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy)


def test_no_email_is_subscribed_unless_asked(synth: Synth) -> None:
    assert synth.config.alarm_email is None
    assert synth.resources("AWS::SNS::Subscription") == {}


def test_alarm_email_subscribes_the_address(tmp_path: Path) -> None:
    other = synthesize(tmp_path, {"bulkapi:alarmEmail": "ops@example.com"})
    (subscription,) = other.resources("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"
    assert subscription["Properties"]["TopicArn"] == {"Ref": other.logical_id(other.stack.observability.topic)}
    assert other.validation_error is None


def test_readme_documents_every_alarm(synth: Synth) -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Alarms") :].split("\n### ", 1)[0]
    for alarm in synth.stack.observability.alarms:
        assert f"`{alarm.node.id}`" in section, alarm.node.id
