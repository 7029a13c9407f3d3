"""Powertools logger, tracer and metrics, shared by every function (each sets its own service name).

The tracer is Powertools' Tracer only when tracing is on (in Lambda, unless POWERTOOLS_TRACE_DISABLED, which the stack
sets when `bulkapi:tracing` is false). Constructing a Tracer imports the X-Ray SDK even when it then disables itself
(100-150 ms of every cold start on a small machine), so with tracing off a stand-in with the same decorators is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics

NAMESPACE = "bulkapi"
F = TypeVar("F", bound=Callable[..., Any])

logger = Logger(service="bulkapi")
metrics = Metrics(namespace=NAMESPACE, service="bulkapi")


def tracing_enabled() -> bool:
    """Powertools' own rule: on inside Lambda (LAMBDA_TASK_ROOT), off when POWERTOOLS_TRACE_DISABLED is true."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in {"1", "true", "yes", "on"}
    emulated = bool(os.environ.get("AWS_SAM_LOCAL") or os.environ.get("AWS_CHALICE_CLI_MODE"))
    return bool(os.environ.get("LAMBDA_TASK_ROOT")) and not disabled and not emulated


class NoTracer:
    """Tracing is off: the decorators the handlers use return the function unchanged."""

    def capture_lambda_handler(self, lambda_handler: F) -> F:
        """No segment: the handler itself."""
        return lambda_handler

    def capture_method(self, method: F) -> F:
        """No subsegment: the method itself."""
        return method


def _tracer() -> Any:
    if not tracing_enabled():
        return NoTracer()
    from aws_lambda_powertools import Tracer

    return Tracer(service="bulkapi")


# Typed as the stand-in: both offer capture_lambda_handler / capture_method with the same meaning.
tracer: NoTracer = _tracer()
