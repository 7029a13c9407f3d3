"""One factory for Lambda defaults: runtime, architecture, JSON logs, tracing, log retention, settings env."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from pydantic import BaseModel

from functions.settings import env_names

ROOT = Path(__file__).resolve().parent.parent
# The function code is one asset: the `functions` package, nothing else of the repository.
CODE_EXCLUDES = ["*", "!functions", "!functions/**", "**/__pycache__", "**/*.pyc"]


def function_code() -> lambda_.Code:
    """The shared code asset."""
    return lambda_.Code.from_asset(str(ROOT), exclude=CODE_EXCLUDES)


def make_function(
    scope: Construct,
    construct_id: str,
    *,
    handler: str,
    settings: type[BaseModel],
    env: dict[str, str],
    timeout: Duration,
    memory: int = 1024,
    log_retention_days: int = 30,
    layers: list[lambda_.ILayerVersion] | None = None,
) -> lambda_.Function:
    """A Python function whose environment is exactly its settings model's variables (missing ones fail synth)."""
    names = env_names(settings)
    environment = {}
    for field, var in names.items():
        if field in env:
            environment[var] = env[field]
        elif settings.model_fields[field].is_required():
            raise ValueError(f"{construct_id}: setting {field} ({var}) has no value")
    environment["POWERTOOLS_METRICS_NAMESPACE"] = "bulkapi"
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=_retention(log_retention_days),
        removal_policy=RemovalPolicy.DESTROY,
    )
    return lambda_.Function(
        scope,
        construct_id,
        runtime=lambda_.Runtime.PYTHON_3_12,
        architecture=lambda_.Architecture.ARM_64,
        handler=f"functions.handlers.{handler}.lambda_handler",
        code=function_code(),
        timeout=timeout,
        memory_size=memory,
        environment=environment,
        tracing=lambda_.Tracing.ACTIVE,
        logging_format=lambda_.LoggingFormat.JSON,
        log_group=log_group,
        layers=layers or [],
    )


_RETENTION = [
    (1, logs.RetentionDays.ONE_DAY),
    (7, logs.RetentionDays.ONE_WEEK),
    (14, logs.RetentionDays.TWO_WEEKS),
    (30, logs.RetentionDays.ONE_MONTH),
    (90, logs.RetentionDays.THREE_MONTHS),
    (180, logs.RetentionDays.SIX_MONTHS),
    (365, logs.RetentionDays.ONE_YEAR),
]


def _retention(days: int) -> logs.RetentionDays:
    """The shortest CloudWatch retention that keeps logs at least `days` days."""
    for limit, retention in _RETENTION:
        if days <= limit:
            return retention
    return logs.RetentionDays.TWO_YEARS
