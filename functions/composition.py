"""Each function's composition root: its dependencies, built once per cold start from its own settings.

A handler module declares a frozen `Deps` (the adapters and settings it needs), how to build them from its settings
model, and how to handle events given them. `Function` joins the three into the Lambda entry point:

    lambda_handler = Function(WorkerSettings, Deps.from_settings, handler_for)

- In Lambda, the first event builds the Deps from the process environment (the one the template gives the
  function); later events of that execution environment reuse them. Nothing is built at import.
- The local runtime builds each function from exactly its template environment (`Function.build(env)`), so two
  functions in one process never share or merge settings.
- Tests pass Deps made of fakes (`Function.with_deps(deps)`); nothing is patched, no cache is cleared.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from functions.observability import logger, metrics, tracer
from functions.settings import load

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

S = TypeVar("S", bound=BaseModel)
D = TypeVar("D")
# A Lambda handler: (event, context) -> answer.
Handler = Callable[[Any, Any], Any]


class Function(Generic[S, D]):
    """A Lambda function: settings model -> Deps -> handler, composed once per cold start."""

    def __init__(self, settings: type[S], deps: Callable[[S], D], handler: Callable[[D], Handler]) -> None:
        self.settings = settings
        self._deps = deps
        self._handler = handler
        self._lock = threading.Lock()
        self._cold_start: Handler | None = None

    def deps(self, env: Mapping[str, str]) -> D:
        """The function's dependencies for an environment (validated settings first: a bad value fails here)."""
        return self._deps(load(self.settings, env))

    def build(self, env: Mapping[str, str]) -> Handler:
        """The handler composed for an environment (the local runtime: the function's template environment)."""
        return self._handler(self.deps(env))

    def with_deps(self, deps: D) -> Handler:
        """The handler composed with the given dependencies (tests: fakes)."""
        return self._handler(deps)

    def __call__(self, event: Any, context: Any) -> Any:
        """The Lambda entry point: composed from the process environment on the first event, then reused."""
        handler = self._cold_start
        if handler is None:
            with self._lock:
                if self._cold_start is None:
                    self._cold_start = self.build(os.environ)
                handler = self._cold_start
        return handler(event, context)


# What the SQS-driven functions share: a handler that runs each record and reports failures per record.
def sqs_handler(record_handler: Callable[[SQSRecord], None]) -> Handler:
    """An SQS event source handler: each record through `record_handler`; one that raises is reported in
    `batchItemFailures` (only it is retried). Logs start clean each invocation (no previous job's ids)."""
    # Imported here, by the SQS-driven functions only: Powertools' batch utility (and asyncio and the stream event
    # classes it brings) was 49 ms of the api function's 213 ms cold import, which never processes a batch.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        # A processor per invocation: it holds the batch's state (and the local runtime runs invocations in threads).
        processor = BatchProcessor(event_type=EventType.SQS)
        return dict(
            process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
        )

    return handle
