"""Observability: the dashboard and the alarms an operator acts on.

The functions publish Powertools metrics in the `bulkapi` namespace with the dimension service=bulkapi:
JobsCreated (api), JobsCompleted / JobsCancelled / JobsFailed / CreditsUsed (finalizer), RowsProcessed (worker),
RowsDeadLettered (dead-letter handler).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import StackConfig
from infra.functions import METRICS_NAMESPACE

PERIOD = Duration.minutes(5)
SERVICE_DIMENSION = {"service": "bulkapi"}


def app_metric(name: str, label: str | None = None) -> cw.Metric:
    """A Powertools metric of the functions, summed per period."""
    return cw.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map=SERVICE_DIMENSION,
        statistic="Sum",
        period=PERIOD,
        label=label,
    )


@dataclass(frozen=True)
class Monitored:
    """What the dashboard and the alarms look at, passed in by the stack."""

    work_queue: sqs.IQueue
    work_dlq: sqs.IQueue
    webhook_dlq: sqs.IQueue
    webhook_retry_dlq: sqs.IQueue
    variant_dlq: sqs.IQueue
    worker: lambda_.IFunction
    state_machine: sfn.IStateMachine
    rest_api: apigw.RestApi
    functions: dict[str, lambda_.IFunction]


class ObservabilityConstruct(Construct):
    """A CloudWatch dashboard and alarms; alarms notify an existing SNS topic when one is configured."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig, monitored: Monitored) -> None:
        super().__init__(scope, construct_id)
        self.alarms = self._alarms(config, monitored)
        if config.alarm_topic_arn:
            topic = sns.Topic.from_topic_arn(self, "AlarmTopic", config.alarm_topic_arn)
            for alarm in self.alarms:
                alarm.add_alarm_action(cw_actions.SnsAction(topic))
                alarm.add_ok_action(cw_actions.SnsAction(topic))
        self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.hours(6))
        self._widgets(monitored)

    def _alarms(self, config: StackConfig, m: Monitored) -> list[cw.Alarm]:
        def alarm(name: str, metric: cw.IMetric, threshold: float, description: str, periods: int = 1) -> cw.Alarm:
            return cw.Alarm(
                self,
                name,
                metric=metric,
                threshold=threshold,
                evaluation_periods=periods,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )

        return [
            alarm(
                "WorkDlqDepth",
                m.work_dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                0,
                "A work batch exhausted its retries. The dead-letter function normally drains this queue within "
                "seconds (counting the rows as failed); a depth that stays up means that function fails too. "
                "See 'Dead letters' in the deployment docs.",
            ),
            alarm(
                "RowsDeadLettered",
                app_metric("RowsDeadLettered"),
                0,
                "Rows were counted as failed because their batch exhausted its retries (provider or code errors).",
            ),
            alarm(
                "WebhookDlqDepth",
                m.webhook_dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                0,
                "The webhook sender failed on bulk_job.* events for 24 h (EventBridge retries); they wait in this "
                "queue and no endpoint got them.",
            ),
            alarm(
                "WebhookRetryDlqDepth",
                m.webhook_retry_dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                0,
                "Webhook retry attempts kept failing inside the sender (not at the receiver); they wait in this queue.",
            ),
            alarm(
                "VariantDlqDepth",
                m.variant_dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                0,
                "Building a download variant kept failing; its downloads answer 202 until a request 20 minutes "
                "later asks for it again.",
            ),
            alarm(
                "WorkerErrors",
                m.worker.metric_errors(period=PERIOD, statistic="Sum"),
                0,
                "Worker invocations failed as a whole (crash or timeout); their batches are retried, then "
                "dead-lettered.",
            ),
            alarm(
                "OldestWork",
                m.work_queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
                config.work_age_alarm_minutes * 60,
                f"Work has waited more than {config.work_age_alarm_minutes} min in the queue: jobs are older than "
                "expected (worker concurrency too low, a provider throttling, or retries piling up).",
            ),
            alarm(
                "FinalizerFailed",
                cw.MathExpression(
                    expression="failed + timedout",
                    using_metrics={
                        "failed": m.state_machine.metric_failed(period=PERIOD, statistic="Sum"),
                        "timedout": m.state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
                    },
                    period=PERIOD,
                    label="finalizer executions failed or timed out",
                ),
                0,
                "A finalizer execution failed even on its MarkFailed path: that job may not reach a terminal status.",
            ),
        ]

    def _widgets(self, m: Monitored) -> None:
        rows = app_metric("RowsProcessed")
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Jobs",
                left=[
                    app_metric("JobsCreated", "created"),
                    app_metric("JobsCompleted", "completed"),
                    app_metric("JobsFailed", "failed"),
                    app_metric("JobsCancelled", "cancelled"),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Rows per second",
                left=[
                    cw.MathExpression(
                        expression="rows / PERIOD(rows)", using_metrics={"rows": rows}, label="rows/s", period=PERIOD
                    )
                ],
                right=[app_metric("RowsDeadLettered", "dead-lettered rows"), app_metric("CreditsUsed", "credits used")],
                width=8,
            ),
            cw.GraphWidget(
                title="Queues",
                left=[
                    m.work_queue.metric_approximate_number_of_messages_visible(label="work queue", period=PERIOD),
                    m.work_dlq.metric_approximate_number_of_messages_visible(label="work DLQ", period=PERIOD),
                    m.webhook_dlq.metric_approximate_number_of_messages_visible(label="webhook DLQ", period=PERIOD),
                    m.webhook_retry_dlq.metric_approximate_number_of_messages_visible(
                        label="webhook retry DLQ", period=PERIOD
                    ),
                    m.variant_dlq.metric_approximate_number_of_messages_visible(label="variant DLQ", period=PERIOD),
                ],
                right=[m.work_queue.metric_approximate_age_of_oldest_message(label="oldest work (s)", period=PERIOD)],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Worker duration (ms)",
                left=[
                    m.worker.metric_duration(statistic=stat, label=stat, period=PERIOD)
                    for stat in ("p50", "p99", "Maximum")
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Function errors",
                left=[fn.metric_errors(label=name, period=PERIOD, statistic="Sum") for name, fn in m.functions.items()],
                width=8,
            ),
            cw.GraphWidget(
                title="API and finalizer",
                left=[
                    m.rest_api.metric_client_error(label="4xx", period=PERIOD),
                    m.rest_api.metric_server_error(label="5xx", period=PERIOD),
                ],
                right=[
                    m.state_machine.metric_succeeded(label="finalized", period=PERIOD),
                    m.state_machine.metric_failed(label="finalizer failed", period=PERIOD),
                ],
                width=8,
            ),
        )
        self.dashboard.add_widgets(cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24, height=3))
