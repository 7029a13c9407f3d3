"""Scheduled sweeper: ends jobs that would otherwise stay unfinished (see logic/sweeper.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.adapters.jobs import JobStore
from functions.adapters.messaging import Finalizer
from functions.logic import sweeper
from functions.observability import logger, metrics, tracer
from functions.settings import SweeperSettings, load


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """EventBridge schedule entry point."""
    settings = load(SweeperSettings)
    outcome = sweeper.sweep(
        JobStore(settings.jobs_table),
        Finalizer(settings.finalizer_arn),
        start_after=timedelta(seconds=settings.start_after_seconds),
        split_lease=timedelta(seconds=settings.split_lease_seconds),
        stalled_after=timedelta(seconds=settings.stalled_after_seconds),
        upload_ttl=timedelta(seconds=settings.upload_url_ttl_seconds),
        upload_grace=timedelta(seconds=settings.upload_grace_seconds),
    )
    if outcome["failed"]:
        metrics.add_metric(name="JobsSwept", unit="Count", value=len(outcome["failed"]))
    return outcome
