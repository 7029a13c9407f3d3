"""Observability: the dashboard and the alarms an operator acts on.

The functions publish Powertools metrics in the `bulkapi` namespace with the dimension service=bulkapi:
JobsCreated (api), JobsCompleted / JobsCancelled / JobsFailed / CreditsUsed (finalizer), RowsProcessed (worker),
RowsDeadLettered (dead-letter handler).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import StackConfig
from infra.functions import METRICS_NAMESPACE

PERIOD = Duration.minutes(5)
# Thresholds are rates (or gauges), and an alarm fires only when M of the last N periods breach: one stray 5xx or
# one failed invocation pages nobody; a problem that lasts 10 minutes of 15 does. README "Alarms" lists each.
SUSTAINED = (2, 3)
# A gauge that should be empty (a DLQ without a consumer) or a lost event: the first datapoint is the problem.
AT_ONCE = (1, 1)
# Error and 5xx rates, in percent of the invocations or requests of the period.
ERROR_RATE_PERCENT = 5
THROTTLE_RATE_PERCENT = 1
# A function whose p99 duration passes this share of its timeout is about to time out.
DURATION_SHARE = 0.8
# The API's p99 latency (proxied routes; the streamed routes run as long as their stream) in milliseconds.
API_P99_LATENCY_MS = 10_000
# Functions invoked asynchronously (S3 notifications, EventBridge rules): Lambda drops an event after its retries.
ASYNC_HANDLERS = ("splitter", "webhooks", "sweeper")
# Every alarm description ends with what to do: `Runbook: ...` (what the notification e-mail shows first).
RUNBOOK_PREFIX = "Runbook: "
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
    # The splitter's dead-letter queue: S3 events it failed on 3 times.
    split_failures: sqs.IQueue
    # The sweeper's dead-letter queue: scheduled runs that failed 3 times (nothing to replay, a count).
    sweeper_failures: sqs.IQueue
    webhook_retry_dlq: sqs.IQueue
    variant_dlq: sqs.IQueue
    fetch_dlq: sqs.IQueue
    worker: lambda_.IFunction
    state_machine: sfn.IStateMachine
    rest_api: apigw.RestApi
    # handler name -> function (FunctionFactory.by_handler): each gets errors, throttles and duration alarms.
    functions: dict[str, lambda_.Function]
    # The tables whose throttled requests raise an alarm.
    tables: dict[str, dynamodb.ITableV2]


# What to do when a function's Errors alarm fires, per handler. A handler missing here fails the synth, so a new
# function cannot ship without its runbook line.
FUNCTION_RUNBOOKS: dict[str, str] = {
    "api": "read the api function's logs (request id in the 5xx answer); an outage of DynamoDB or S3 shows there too.",
    "stream": "read the stream function's logs; a crash ends the client's stream early (it is charged for what it "
    "got). Check the Web Adapter layer and uvicorn start-up after a deploy.",
    "splitter": "read the splitter's logs for the key; the S3 event is retried twice, then it waits in the split "
    "failures queue (SplitFailuresDepth) and the sweeper fails the job as split_failed after its lease.",
    "worker": "read the worker's logs; its batches are retried, then dead-lettered (WorkDlqDepth).",
    "dead_letter": "read the dead-letter function's logs: the batch stays in the work DLQ until it succeeds "
    "(README 'Dead letters').",
    "finalizer": "open the failed executions in Step Functions (name = job id); MarkFailed ends the job failed.",
    "webhooks": "read the sender's logs; Lambda retries the event twice, then it goes to the webhook DLQ "
    "(WebhookDlqDepth).",
    "sweeper": "read the sweeper's logs; the next run (5 min) retries, but stuck jobs stay stuck while it fails "
    "(a run that failed 3 times is counted in the sweeper failures queue, SweeperFailuresDepth).",
    "authorizer": "read the authorizer's logs: callers get 500 from API Gateway while it fails (DynamoDB outage, "
    "throttling); raise its reserved concurrency if it is throttled.",
    "fetcher": "read the fetcher's logs: a fetch that keeps failing ends its job failed (fetch_failed, "
    "fetch_too_large or fetch_blocked) after the queue's retries.",
    "variants": "read the variants function's logs; its messages are retried, then wait in the variant DLQ "
    "(VariantDlqDepth) while downloads of that variant answer 202.",
}


def _camel(handler: str) -> str:
    return "".join(part.capitalize() for part in handler.split("_"))


def proxied_latency(rest_api: apigw.RestApi) -> cw.Metric:
    """p99 latency of the `{proxy+}` method (every route but the streamed ones, which last as long as their stream,
    and the public pages): API Gateway's detailed metrics, by API, stage, resource and method."""
    return cw.Metric(
        namespace="AWS/ApiGateway",
        metric_name="Latency",
        dimensions_map={
            "ApiName": rest_api.rest_api_name,
            "Stage": rest_api.deployment_stage.stage_name,
            "Resource": "/{proxy+}",
            "Method": "ANY",
        },
        statistic="p99",
        period=PERIOD,
    )


def rate(part: cw.IMetric, whole: cw.IMetric, label: str, *, whole_includes_part: bool = True) -> cw.MathExpression:
    """`part` in percent of `whole` per period (0 when nothing happened); `whole_includes_part=False` when the
    whole is counted without the part (Lambda's Invocations do not count throttled ones)."""
    total = "whole" if whole_includes_part else "(whole + part)"
    return cw.MathExpression(
        expression=f"IF({total} > 0, 100 * part / {total}, 0)",
        using_metrics={"part": part, "whole": whole},
        period=PERIOD,
        label=label,
    )


class ObservabilityConstruct(Construct):
    """A CloudWatch dashboard, alarms, and the SNS topic every alarm notifies (plus an existing one if given)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig, monitored: Monitored) -> None:
        super().__init__(scope, construct_id)
        self.topic = self._topic(config)
        self.alarms = self._alarms(config, monitored)
        targets: list[sns.ITopic] = [self.topic]
        if config.alarm_topic_arn:
            targets.append(sns.Topic.from_topic_arn(self, "ExistingAlarmTopic", config.alarm_topic_arn))
        for alarm in self.alarms:
            for topic in targets:
                alarm.add_alarm_action(cw_actions.SnsAction(topic))
                alarm.add_ok_action(cw_actions.SnsAction(topic))
        self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.hours(6))
        self._widgets(monitored)

    def _topic(self, config: StackConfig) -> sns.Topic:
        stack = Stack.of(self)
        # Encrypted with a key of the stack's own: SNS's AWS-managed key (alias/aws/sns) cannot be used by CloudWatch
        # alarms, whose service principal needs kms:GenerateDataKey* and kms:Decrypt on the key.
        self.key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"bulkapi {config.stage}: encrypts the alarm topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsEncrypt",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"bulkapi {config.stage} alarms",
            enforce_ssl=True,
            master_key=self.key,
        )
        # enforce_ssl writes a topic policy, which replaces SNS's default one: CloudWatch needs its own grant.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
                    },
                    "StringEquals": {"aws:SourceAccount": stack.account},
                },
            )
        )
        if config.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        return topic

    def _alarms(self, config: StackConfig, m: Monitored) -> list[cw.Alarm]:
        def alarm(
            name: str,
            metric: cw.IMetric,
            threshold: float,
            what: str,
            runbook: str,
            m_of_n: tuple[int, int] = SUSTAINED,
        ) -> cw.Alarm:
            datapoints, periods = m_of_n
            return cw.Alarm(
                self,
                name,
                metric=metric,
                threshold=threshold,
                datapoints_to_alarm=datapoints,
                evaluation_periods=periods,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description=f"{what} {RUNBOOK_PREFIX}{runbook}",
            )

        def queue_depth(queue: sqs.IQueue) -> cw.IMetric:
            return queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum")

        alarms = [
            alarm(
                "WorkDlqDepth",
                queue_depth(m.work_dlq),
                0,
                "A work batch exhausted its retries and stayed in the work DLQ for 10 minutes.",
                "the dead-letter function normally drains it within seconds (counting the rows failed); a depth that "
                "stays up means that function fails too: read its logs, then README 'Dead letters'.",
            ),
            alarm(
                "RowsDeadLettered",
                app_metric("RowsDeadLettered"),
                0,
                "Rows were counted as failed because their batch exhausted its retries.",
                "read the worker's logs for the cause (provider outage, bad input, bug).",
                AT_ONCE,
            ),
            alarm(
                "WebhookDlqDepth",
                queue_depth(m.webhook_dlq),
                0,
                "The webhook sender failed 3 times on a bulk_job.* event (or EventBridge could not hand it to Lambda "
                "for 24 h); it waits in the webhook DLQ.",
                "read the sender's logs, fix, then replay the events (README 'Dead letters').",
                AT_ONCE,
            ),
            alarm(
                "SplitFailuresDepth",
                queue_depth(m.split_failures),
                0,
                "The splitter failed 3 times on an S3 event (an upload or a drop); it waits in the split failures "
                "queue and its job is failed by the sweeper.",
                "read the splitter's logs for the key, fix, then replay the events (README 'Dead letters').",
                AT_ONCE,
            ),
            alarm(
                "SweeperFailuresDepth",
                queue_depth(m.sweeper_failures),
                0,
                "A scheduled sweep failed 3 times; its tick waits in the sweeper failures queue. Stranded jobs stay "
                "unfinished while sweeps fail.",
                "read the sweeper's logs, fix; the next run catches up, then purge the queue (README 'Dead letters').",
                AT_ONCE,
            ),
            alarm(
                "WebhookRetryDlqDepth",
                queue_depth(m.webhook_retry_dlq),
                0,
                "Webhook retries kept failing inside the sender (not at the receiver).",
                "read the sender's logs, fix, then `aws sqs start-message-move-task` on WebhookRetryDlqArn.",
                AT_ONCE,
            ),
            alarm(
                "FetchDlqDepth",
                queue_depth(m.fetch_dlq),
                0,
                "A remote file's fetch kept failing inside the fetcher; its job waits until the sweeper fails it.",
                "read the fetcher's logs, fix, then `aws sqs start-message-move-task` on the fetch DLQ.",
                AT_ONCE,
            ),
            alarm(
                "VariantDlqDepth",
                queue_depth(m.variant_dlq),
                0,
                "Building a download variant kept failing; its downloads answer 202 until a request 20 minutes "
                "later asks for it again.",
                "read the variants function's logs, fix, then `aws sqs start-message-move-task` on the variant DLQ.",
                AT_ONCE,
            ),
            alarm(
                "OldestWork",
                m.work_queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
                config.work_age_alarm_minutes * 60,
                f"Work has waited more than {config.work_age_alarm_minutes} min in the queue: jobs are late.",
                "raise bulkapi:workerMaxConcurrency, or look for provider throttling or retry loops (worker logs).",
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
                "A finalizer execution failed or timed out: the finalizer itself broke, even its MarkFailed step "
                "(a job that fails cleanly, for a bad file or missing credits, ends the execution Succeeded).",
                "open the execution in Step Functions (its name is the job id); once the cause is fixed, "
                "`aws stepfunctions redrive-execution --execution-arn <arn>` reruns it from the failed step "
                "(README 'Alarms').",
                AT_ONCE,
            ),
            alarm(
                "StateMachineThrottled",
                m.state_machine.metric(
                    "ExecutionThrottled", period=PERIOD, statistic="Sum", label="finalizer executions throttled"
                ),
                0,
                "Step Functions throttled starting finalizer executions (StartExecution over the account's quota).",
                "the worker or sweeper that started it retries; if it lasts, ask AWS for a higher StartExecution "
                "quota or look for a loop starting executions (their logs).",
            ),
            alarm(
                "Api5xx",
                rate(
                    m.rest_api.metric_server_error(period=PERIOD, statistic="Sum"),
                    m.rest_api.metric_count(period=PERIOD, statistic="Sum"),
                    "5xx in % of requests",
                ),
                ERROR_RATE_PERCENT,
                f"More than {ERROR_RATE_PERCENT}% of the API's answers were 5xx in 10 of 15 minutes.",
                "check the Errors alarms of the api, stream and authorizer functions and the API's execution logs "
                "(ERROR level) for integration timeouts.",
            ),
            alarm(
                "ApiLatencyP99",
                proxied_latency(m.rest_api),
                API_P99_LATENCY_MS,
                f"The API's p99 latency (proxied routes) was above {API_P99_LATENCY_MS} ms in 10 of 15 minutes.",
                "compare IntegrationLatency (the functions) with Latency (the gateway); check the api function's "
                "duration and throttle alarms and DynamoDB throttling.",
            ),
            *(
                alarm(
                    f"{_camel(name)}TableThrottled",
                    cw.MathExpression(
                        expression="(reads + writes) / PERIOD(reads)",
                        using_metrics={
                            "reads": table.metric("ReadThrottleEvents", period=PERIOD, statistic="Sum"),
                            "writes": table.metric("WriteThrottleEvents", period=PERIOD, statistic="Sum"),
                        },
                        period=PERIOD,
                        label=f"{name} table throttled requests per second",
                    ),
                    0,
                    f"DynamoDB throttled requests on the {name} table in 10 of 15 minutes.",
                    "on-demand tables throttle above twice their previous peak or a hot partition: read which "
                    "function retries (its logs); warm the table with pre-warming or spread the keys.",
                )
                for name, table in sorted(m.tables.items())
            ),
        ]
        for handler, fn in sorted(m.functions.items()):
            alarms += self._function_alarms(alarm, handler, fn)
        return alarms

    @staticmethod
    def _function_alarms(alarm: Callable[..., cw.Alarm], handler: str, fn: lambda_.Function) -> list[cw.Alarm]:
        """Errors and throttles as rates, p99 duration near the timeout; dropped events for async functions."""
        if handler not in FUNCTION_RUNBOOKS:
            raise ValueError(f"no runbook line for the {handler} function's errors alarm (FUNCTION_RUNBOOKS)")
        if fn.timeout is None:
            raise ValueError(f"the {handler} function has no timeout to measure its duration against")
        name = _camel(handler)
        invocations = fn.metric_invocations(period=PERIOD, statistic="Sum")
        limit_ms = DURATION_SHARE * fn.timeout.to_milliseconds()
        alarms = [
            alarm(
                f"{name}Errors",
                rate(fn.metric_errors(period=PERIOD, statistic="Sum"), invocations, "errors in %"),
                ERROR_RATE_PERCENT,
                f"More than {ERROR_RATE_PERCENT}% of the {handler} function's invocations failed (crash, timeout or "
                "an unhandled error) in 10 of 15 minutes.",
                FUNCTION_RUNBOOKS[handler],
            ),
            alarm(
                f"{name}Throttles",
                rate(
                    fn.metric_throttles(period=PERIOD, statistic="Sum"),
                    invocations,
                    "throttles in %",
                    whole_includes_part=False,
                ),
                THROTTLE_RATE_PERCENT,
                f"Lambda throttled more than {THROTTLE_RATE_PERCENT}% of the {handler} function's invocations in "
                "10 of 15 minutes (its reserved concurrency, an event source's maximum, or the account's quota).",
                "callers got 429/502 or the event source retried: raise the function's concurrency "
                "(bulkapi:apiReservedConcurrency, streamReservedConcurrency, workerMaxConcurrency) or the account's "
                "Lambda quota.",
            ),
            alarm(
                f"{name}Duration",
                fn.metric_duration(period=PERIOD, statistic="p99"),
                limit_ms,
                f"The {handler} function's p99 duration passed {DURATION_SHARE:.0%} of its "
                f"{fn.timeout.to_seconds():.0f} s timeout in 10 of 15 minutes: invocations are about to time out.",
                "read its logs for slow calls (a provider, DynamoDB or S3); raise the memory (more CPU) or split "
                "the work before it times out.",
            ),
        ]
        if handler in ASYNC_HANDLERS:
            alarms.append(
                alarm(
                    f"{name}AsyncEventsDropped",
                    fn.metric("AsyncEventsDropped", period=PERIOD, statistic="Sum"),
                    0,
                    f"Lambda gave up on events sent to the {handler} function asynchronously (retries spent, too "
                    "old, or no concurrency); it counts those it then put in the function's dead-letter queue too.",
                    "if that queue's depth alarm fired too, the events wait there (README 'Dead letters'); if not "
                    "(DeadLetterErrors), they are gone: find what they were (an upload's job, a job's webhook) in the "
                    "function's logs at that time and redo it.",
                    AT_ONCE,
                )
            )
        return alarms

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
                    m.split_failures.metric_approximate_number_of_messages_visible(
                        label="split failures", period=PERIOD
                    ),
                    m.sweeper_failures.metric_approximate_number_of_messages_visible(
                        label="sweeper failures", period=PERIOD
                    ),
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
