"""Scheduled sweeper: ends jobs that would otherwise stay unfinished (see logic/sweeper.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.adapters.blobs import BlobStore
from functions.adapters.jobs import JobStore
from functions.adapters.messaging import Finalizer
from functions.composition import Function, Handler
from functions.logic import sweeper
from functions.observability import logger, metrics, tracer
from functions.settings import SweeperSettings


@dataclass(frozen=True)
class Deps:
    """What the sweeper needs, built once per cold start."""

    store: Any
    finalizer: Any
    files: Any
    settings: SweeperSettings

    @classmethod
    def from_settings(cls, settings: SweeperSettings) -> Deps:
        """The real adapters."""
        return cls(
            JobStore(settings.jobs_table), Finalizer(settings.finalizer_arn), BlobStore(settings.bucket), settings
        )


def handler_for(deps: Deps) -> Handler:
    """The sweeper composed with its dependencies."""
    settings = deps.settings

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        # The EventBridge schedule's event carries nothing the sweep needs.
        outcome = sweeper.sweep(
            deps.store,
            deps.finalizer,
            files=deps.files,
            start_after=timedelta(seconds=settings.start_after_seconds),
            split_lease=timedelta(seconds=settings.split_lease_seconds),
            stalled_after=timedelta(seconds=settings.stalled_after_seconds),
            upload_ttl=timedelta(seconds=settings.upload_url_ttl_seconds),
            upload_grace=timedelta(seconds=settings.upload_grace_seconds),
            fetch_wait=timedelta(seconds=settings.fetch_wait_seconds),
            fetch_lease=timedelta(seconds=settings.fetch_lease_seconds),
        )
        if outcome["failed"]:
            metrics.add_metric(name="JobsSwept", unit="Count", value=len(outcome["failed"]))
        return outcome

    return handle


lambda_handler = Function(SweeperSettings, Deps.from_settings, handler_for)
