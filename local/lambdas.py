"""Local Lambda: call the real `lambda_handler` of a function, as AWS would, with a Lambda-like context.

Most functions run in this process. The heavy queue-driven ones (splitter, worker, dead-letter) can run in a pool
of separate processes instead, the way Lambda gives each concurrent invocation its own execution environment:
their CPU work then runs beside the API, the pollers and the other handlers instead of competing for one GIL.

moto cannot run a function without Docker. Step Functions tasks reach functions through moto's Lambda
backend, whose `LambdaFunction._invoke_lambda` the emulation process patches to call back here
(local/emulation.py); tests/integration/test_pipeline.py covers that path.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import multiprocessing
import os
import signal
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from local.lifetime import exit_with_parent
from local.resources import ACCOUNT, REGION, LocalFunction

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Powertools and our handlers read."""

    function_name: str
    timeout_seconds: int
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    def __post_init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the (emulated) timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class InvocationError(Exception):
    """A handler raised: carries the error as Lambda reports it."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.error_message = message


# Handlers that may run in the process pool: queue-driven, CPU-heavy, and reached only through their pollers.
ISOLATABLE: frozenset[str] = frozenset(
    {
        "functions.handlers.splitter.lambda_handler",
        "functions.handlers.worker.lambda_handler",
        "functions.handlers.dead_letter.lambda_handler",
        # Streams a whole result (up to a million rows) through csv: CPU-bound like the worker.
        "functions.handlers.variants.lambda_handler",
    }
)


def _load(handler: str) -> Handler:
    module, _, attr = handler.rpartition(".")
    loaded: Handler = getattr(importlib.import_module(module), attr)
    return loaded


def _child_init() -> None:
    # Ctrl-C reaches the whole process group; only the runtime decides when its function processes end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()


def _warm(handlers: list[str]) -> int:
    # Import the handlers (and through them boto3, Powertools, the enrichment libraries) before the first event.
    for handler in handlers:
        _load(handler)
    from functions.adapters.aws import client
    from functions.enrich import enrich_values

    for service in ("s3", "dynamodb", "sqs", "stepfunctions", "events"):
        client(service)  # building a client reads botocore's service models: ~50 ms each, once per process
    # The Public Suffix List and email-validator's tables load on first use; the geocoder and GeoIP data are
    # left to the first phone or ip job (they are large, and most processes never need them).
    enrich_values("email", ["warm.up@example.com"])
    time.sleep(0.2)  # hold this process, so each warm-up task lands in a different one
    return os.getpid()


def _invoke_in_child(handler: str, event: dict[str, Any], name: str, timeout: int) -> tuple[bool, Any]:
    try:
        return True, _load(handler)(event, LambdaContext(name, timeout))
    except Exception as exc:
        return False, (type(exc).__name__, str(exc), traceback.format_exc())


class Invoker:
    """Runs functions by name or logical id; counts invocations for tests and benchmarks."""

    def __init__(self, functions: dict[str, LocalFunction], processes: int = 0) -> None:
        self.functions = functions
        self.by_name = {fn.name: fn for fn in functions.values()}
        self._handlers: dict[str, Handler] = {}
        self.invocations: dict[str, int] = {}
        self._lock = threading.Lock()
        # Test hook: a function logical id -> callable run before the handler (to inject crashes).
        self.faults: dict[str, Callable[[dict[str, Any]], None]] = {}
        self._pool: ProcessPoolExecutor | None = None
        self.isolated_pids: list[int] = []
        if processes > 0:
            # spawn, not fork: this process has threads (pollers, the API server) and fork copies their locks.
            # The children inherit the environment the runtime has set up (endpoint, table and queue names).
            self._pool = ProcessPoolExecutor(
                processes, mp_context=multiprocessing.get_context("spawn"), initializer=_child_init
            )
            isolated = sorted({fn.handler for fn in functions.values()} & ISOLATABLE)
            pids = {f.result() for f in [self._pool.submit(_warm, isolated) for _ in range(processes)]}
            self.isolated_pids = sorted(pids)

    def isolated(self, fn: LocalFunction) -> bool:
        """Whether this function's invocations run in the process pool."""
        return self._pool is not None and fn.handler in ISOLATABLE

    def close(self) -> None:
        """Stop the process pool (in-flight invocations are abandoned, as when a runtime is killed)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            for pid in self.isolated_pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)

    def handler(self, fn: LocalFunction) -> Handler:
        """Import the function's handler the way the Lambda runtime does (module path + attribute)."""
        if fn.logical_id not in self._handlers:
            module, _, attr = fn.handler.rpartition(".")
            self._handlers[fn.logical_id] = getattr(importlib.import_module(module), attr)
        return self._handlers[fn.logical_id]

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """Invoke synchronously; raises InvocationError when the handler raises."""
        fn = self.functions[logical_id]
        with self._lock:
            self.invocations[logical_id] = self.invocations.get(logical_id, 0) + 1
        try:
            fault = self.faults.get(logical_id)
            if fault is not None:
                fault(event)
            if self.isolated(fn):
                return self._invoke_isolated(fn, event)
            return self.handler(fn)(event, LambdaContext(fn.name, fn.timeout))
        except InvocationError:
            raise
        except Exception as exc:
            traceback.print_exc()
            raise InvocationError(type(exc).__name__, str(exc)) from exc

    def _invoke_isolated(self, fn: LocalFunction, event: dict[str, Any]) -> Any:
        assert self._pool is not None
        ok, value = self._pool.submit(_invoke_in_child, fn.handler, event, fn.name, fn.timeout).result()
        if ok:
            return value
        error_type, message, trace = value
        print(trace, end="", flush=True)
        raise InvocationError(error_type, message)

    def invoke_by_name(self, name: str, event: Any) -> tuple[str, bool]:
        """moto's calling convention: (payload JSON, errored)."""
        fn = self.by_name.get(name)
        if fn is None:
            return json.dumps({"errorMessage": f"no local function {name}", "errorType": "ResourceNotFound"}), True
        payload = json.loads(event) if isinstance(event, (str, bytes)) else (event or {})
        try:
            return json.dumps(self.invoke(fn.logical_id, payload)), False
        except InvocationError as exc:
            return json.dumps({"errorMessage": exc.error_message, "errorType": exc.error_type}), True
