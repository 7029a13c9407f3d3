"""One factory for Lambda defaults: runtime, architecture, role, JSON logs, tracing, log retention, settings env."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.settings import FUNCTION_SETTINGS, PREFIX, env_names
from infra.nag import acknowledge, policy_of, resource_of

ROOT = Path(__file__).resolve().parent.parent
# The function code is one asset: the `functions` package, nothing else of the repository.
CODE_EXCLUDES = ["*", "!functions", "!functions/**", "**/__pycache__", "**/*.pyc"]
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
METRICS_NAMESPACE = "bulkapi"

# Which settings model each handler reads: the environment of its function is derived from it.
HANDLER_SETTINGS = FUNCTION_SETTINGS


def function_code() -> lambda_.Code:
    """The shared code asset."""
    return lambda_.Code.from_asset(str(ROOT), exclude=CODE_EXCLUDES)


def function_environment(handler: str, env: dict[str, str]) -> dict[str, str]:
    """Exactly the handler's settings variables (BULKAPI_*) plus the metrics namespace; a missing required one fails."""
    settings = HANDLER_SETTINGS[handler]
    environment = {}
    for name, var in env_names(settings).items():
        if name in env:
            environment[var] = env[name]
        elif settings.model_fields[name].is_required():
            raise ValueError(f"{handler}: setting {name} ({var}) has no value")
    unknown = sorted(set(env) - set(settings.model_fields))
    if unknown:
        raise ValueError(f"{handler}: {unknown} are not fields of {settings.__name__}")
    environment["POWERTOOLS_METRICS_NAMESPACE"] = METRICS_NAMESPACE
    return environment


def runtime_environment(handler: str, settings_env: dict[str, str], runtime_env: Mapping[str, str]) -> dict[str, str]:
    """The settings variables plus variables for the Lambda runtime or an extension (the Lambda Web Adapter).

    Those may not use the settings prefix, so every BULKAPI_* variable still comes from the settings model, and
    may not replace a settings variable.
    """
    for var in runtime_env:
        if var.startswith(PREFIX) or var in settings_env:
            raise ValueError(f"{handler}: {var} comes from the settings model, it cannot be a runtime variable")
    return {**settings_env, **runtime_env}


@dataclass
class FunctionFactory:
    """Lambda defaults shared by every function of the stack; remembers what it built (for alarms and tests)."""

    log_retention_days: int
    layers: list[lambda_.ILayerVersion] = field(default_factory=list)
    # X-Ray (bulkapi:tracing): active tracing and Powertools' Tracer, or neither (the X-Ray SDK is then never loaded).
    tracing: bool = False
    built: dict[str, lambda_.Function] = field(default_factory=dict)
    # handler module name -> its function: one function per handler, so alarms and runbooks are per handler.
    by_handler: dict[str, lambda_.Function] = field(default_factory=dict)

    def make(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        env: dict[str, str],
        timeout: Duration,
        memory: int = 1024,
        entry: str | None = None,
        runtime_env: Mapping[str, str] | None = None,
        extra_layers: Sequence[lambda_.ILayerVersion] = (),
        reserved_concurrency: int | None = None,
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> lambda_.Function:
        """A function of `functions.handlers.<handler>` whose environment is exactly its settings model's variables.

        `entry` replaces the Lambda handler (`functions.handlers.<handler>.lambda_handler`), e.g. with a start
        script run by an extension; `runtime_env` and `extra_layers` configure such an extension.
        `dead_letter_queue` is for a function invoked asynchronously: where Lambda puts an event it gave up on.
        """
        if handler in self.by_handler:
            raise ValueError(f"a function for handler {handler} exists already: {self.by_handler[handler].node.path}")
        fn = make_function(
            scope,
            construct_id,
            handler=handler,
            env=env,
            timeout=timeout,
            memory=memory,
            log_retention_days=self.log_retention_days,
            layers=[*self.layers, *extra_layers],
            entry=entry,
            runtime_env=runtime_env,
            reserved_concurrency=reserved_concurrency,
            tracing=self.tracing,
            dead_letter_queue=dead_letter_queue,
        )
        self.built[fn.node.path] = fn
        self.by_handler[handler] = fn
        return fn


def make_function(
    scope: Construct,
    construct_id: str,
    *,
    handler: str,
    env: dict[str, str],
    timeout: Duration,
    memory: int = 1024,
    log_retention_days: int = 30,
    layers: list[lambda_.ILayerVersion] | None = None,
    entry: str | None = None,
    runtime_env: Mapping[str, str] | None = None,
    reserved_concurrency: int | None = None,
    tracing: bool = False,
    dead_letter_queue: sqs.IQueue | None = None,
) -> lambda_.Function:
    """A Python function on arm64 with its own log group and a role that may write only to that log group."""
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=retention(log_retention_days),
        removal_policy=RemovalPolicy.DESTROY,
    )
    # An explicit role instead of AWSLambdaBasicExecutionRole: that managed policy may create log groups and
    # write to any of them; this one writes to its own group only. Grants add the rest, one by one.
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"bulkapi {handler} function",
    )
    log_group.grant_write(role)
    fn = lambda_.Function(
        scope,
        construct_id,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=entry or f"functions.handlers.{handler}.lambda_handler",
        code=function_code(),
        timeout=timeout,
        memory_size=memory,
        environment=runtime_environment(
            handler, function_environment(handler, env), {**(runtime_env or {}), **tracing_environment(tracing)}
        ),
        tracing=lambda_.Tracing.ACTIVE if tracing else lambda_.Tracing.DISABLED,
        logging_format=lambda_.LoggingFormat.JSON,
        log_group=log_group,
        role=role,
        layers=layers or [],
        reserved_concurrent_executions=reserved_concurrency,
        # The event itself with the error in message attributes; CDK grants the role sqs:SendMessage on it.
        dead_letter_queue=dead_letter_queue,
    )
    acknowledge(
        resource_of(fn),
        "AwsSolutions-L1",
        f"{RUNTIME.name} on purpose: the dependency layer's binary wheels (pydantic-core) are resolved for "
        "this exact CPython version; raise RUNTIME and the layer's --python-version together.",
    )
    if tracing:
        acknowledge(
            policy_of(role),
            "AwsSolutions-IAM5[Resource::*]",
            "Active tracing needs xray:PutTraceSegments/PutTelemetryRecords, which support no resource-level scope.",
        )
    return fn


def tracing_environment(tracing: bool) -> dict[str, str]:
    """Inside Lambda, Powertools' Tracer turns itself on; with tracing off it must be told (functions/observability)."""
    return {} if tracing else {"POWERTOOLS_TRACE_DISABLED": "true"}


_RETENTION = [
    (1, logs.RetentionDays.ONE_DAY),
    (7, logs.RetentionDays.ONE_WEEK),
    (14, logs.RetentionDays.TWO_WEEKS),
    (30, logs.RetentionDays.ONE_MONTH),
    (90, logs.RetentionDays.THREE_MONTHS),
    (180, logs.RetentionDays.SIX_MONTHS),
    (365, logs.RetentionDays.ONE_YEAR),
]


def retention(days: int) -> logs.RetentionDays:
    """The shortest CloudWatch retention that keeps logs at least `days` days."""
    for limit, value in _RETENTION:
        if days <= limit:
            return value
    return logs.RetentionDays.TWO_YEARS
