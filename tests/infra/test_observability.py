"""Dashboard and alarms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.observability import AT_ONCE, ERROR_RATE_PERCENT, RUNBOOK_PREFIX, SUSTAINED
from tests.infra.conftest import ALARM_EMAIL, Synth
from tests.infra.test_pipeline import async_targets

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
    assert json.dumps({"Ref": synth.logical_id(pipeline.worker)}, sort_keys=True) in _by_metric(
        synth, "AWS/Lambda", "Errors"
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


def _watched(alarm: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(namespace, metric name, first dimension's value) of every metric an alarm reads, math or not."""
    stats = (
        [alarm]
        if "MetricName" in alarm
        else [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]
    )
    return [(m["Namespace"], m["MetricName"], (m.get("Dimensions") or [{}])[0].get("Value")) for m in stats]


def _by_metric(synth: Synth, namespace: str, metric: str) -> dict[str, dict[str, Any]]:
    """Alarms that read one metric, by the json of its first dimension's value."""
    return {
        json.dumps(value, sort_keys=True): alarm
        for alarm in _alarms(synth).values()
        for ns, name, value in _watched(alarm)
        if (ns, name) == (namespace, metric)
    }


def test_every_function_has_error_and_throttle_rate_alarms_and_a_duration_alarm_near_its_timeout(
    synth: Synth,
) -> None:
    errors = _by_metric(synth, "AWS/Lambda", "Errors")
    throttles = _by_metric(synth, "AWS/Lambda", "Throttles")
    durations = _by_metric(synth, "AWS/Lambda", "Duration")
    functions = synth.stack.functions.by_handler
    assert len(functions) >= 10
    for handler, fn in functions.items():
        ref = json.dumps({"Ref": synth.logical_id(fn)}, sort_keys=True)
        # Errors and throttles: a rate of the invocations, over M of N periods (one failure pages nobody)
        for alarm in (errors[ref], throttles[ref]):
            assert "100 * part" in json.dumps(alarm["Metrics"]), handler
            assert (alarm["DatapointsToAlarm"], alarm["EvaluationPeriods"]) == SUSTAINED, handler
        # Duration: p99 above 80% of the function's own timeout
        timeout_s = synth.template["Resources"][synth.logical_id(fn)]["Properties"]["Timeout"]
        duration = durations[ref]
        assert duration["ExtendedStatistic"] == "p99", handler
        assert duration["Threshold"] == pytest.approx(0.8 * timeout_s * 1000), handler


def test_every_alarm_is_m_of_n_and_event_counts_are_rates(synth: Synth) -> None:
    for lid, alarm in _alarms(synth).items():
        m, n = alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"]), alarm["EvaluationPeriods"]
        assert (m, n) in (SUSTAINED, AT_ONCE), lid
        # What fires at once is an empty-or-not gauge, a lost event or a broken finalizer: each one is a problem
        if (m, n) == AT_ONCE:
            names = {name for _, name, _ in _watched(alarm)}
            assert names <= {
                "ApproximateNumberOfMessagesVisible",
                "RowsDeadLettered",
                "AsyncEventsDropped",
                "ExecutionsFailed",
                "ExecutionsTimedOut",
            }, lid


def test_api_latency_dynamodb_and_step_functions_throttles_and_dropped_async_events_raise_alarms(
    synth: Synth,
) -> None:
    api_name = synth.template["Resources"][synth.logical_id(synth.stack.api.rest_api)]["Properties"]["Name"]
    (latency,) = [a for a in _alarms(synth).values() if ("AWS/ApiGateway", "Latency", api_name) in _watched(a)]
    assert latency["ExtendedStatistic"] == "p99"
    # Of the proxied routes: the streamed ones last as long as their stream, so they are not in it
    assert {"Name": "Resource", "Value": "/{proxy+}"} in latency["Dimensions"]
    assert {"Name": "Method", "Value": "ANY"} in latency["Dimensions"]
    for table in (synth.stack.storage.table, synth.stack.enrichment.cache):
        ref = json.dumps({"Ref": synth.logical_id(table)}, sort_keys=True)
        assert ref in _by_metric(synth, "AWS/DynamoDB", "ReadThrottleEvents")
        assert ref in _by_metric(synth, "AWS/DynamoDB", "WriteThrottleEvents")
    machine = json.dumps({"Ref": synth.logical_id(synth.stack.finalizer.state_machine)}, sort_keys=True)
    assert machine in _by_metric(synth, "AWS/States", "ExecutionThrottled")
    dropped = _by_metric(synth, "AWS/Lambda", "AsyncEventsDropped")
    for fn in (synth.stack.pipeline.splitter, synth.stack.webhooks.function, synth.stack.sweeper.function):
        assert json.dumps({"Ref": synth.logical_id(fn)}, sort_keys=True) in dropped


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
    # and the dead-letter queues of the functions invoked asynchronously (and any on-failure destination)
    dlqs |= {
        fn["Properties"]["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
        for fn in synth.resources("AWS::Lambda::Function").values()
        if "DeadLetterConfig" in fn["Properties"]
    }
    dlqs |= {
        c["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        for c in synth.resources("AWS::Lambda::EventInvokeConfig").values()
        if "OnFailure" in c["Properties"].get("DestinationConfig", {})
    }
    # (the splitter's, the webhook sender's and the sweeper's)
    invoked = async_targets(synth)
    assert len({resources[lid]["Properties"]["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0] for lid in invoked}) == 3
    assert len(dlqs) >= 6 and all(resources[q]["Type"] == "AWS::SQS::Queue" for q in dlqs)
    # Then each has an alarm on its visible messages
    watched = {
        alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for alarm in _alarms(synth).values()
        if alarm.get("Namespace") == "AWS/SQS" and alarm.get("MetricName") == "ApproximateNumberOfMessagesVisible"
    }
    assert dlqs <= watched


def test_api_5xx_raises_an_alarm_as_a_rate_of_requests(synth: Synth) -> None:
    api_name = synth.template["Resources"][synth.logical_id(synth.stack.api.rest_api)]["Properties"]["Name"]
    alarm = _by_metric(synth, "AWS/ApiGateway", "5XXError")[json.dumps(api_name)]
    assert ("AWS/ApiGateway", "Count", api_name) in _watched(alarm)
    assert alarm["Threshold"] == ERROR_RATE_PERCENT


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


def test_alarm_email_subscribes_the_address_and_none_is_subscribed_unless_asked(synth: Synth, dev_synth: Synth) -> None:
    (subscription,) = synth.resources("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == synth.config.alarm_email == ALARM_EMAIL
    assert subscription["Properties"]["TopicArn"] == {"Ref": synth.logical_id(synth.stack.observability.topic)}
    assert dev_synth.config.alarm_email is None
    assert dev_synth.resources("AWS::SNS::Subscription") == {}


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(synth: Synth) -> None:
    topic = synth.template["Resources"][synth.logical_id(synth.stack.observability.topic)]["Properties"]
    key_id = synth.logical_id(synth.stack.observability.key)
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    key = synth.template["Resources"][key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    cloudwatch = [
        s for s in key["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(cloudwatch[0]["Action"])


def test_readme_documents_every_alarm(synth: Synth) -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Alarms") :].split("\n### ", 1)[0]
    for alarm in synth.stack.observability.alarms:
        assert f"`{alarm.node.id}`" in section, alarm.node.id
