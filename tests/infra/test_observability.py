"""Dashboard and alarms."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match, Template

from tests.infra.conftest import Synth


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
