"""In-process Lambda: call the real `lambda_handler` of a function, as AWS would, with a Lambda-like context.

moto cannot run a function without Docker. Step Functions tasks reach functions through moto's Lambda
backend, whose `LambdaFunction._invoke_lambda` the emulation process patches to call back here
(local/emulation.py); tests/integration/test_pipeline.py covers that path.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


class Invoker:
    """Runs functions by name or logical id; counts invocations for tests and benchmarks."""

    def __init__(self, functions: dict[str, LocalFunction]) -> None:
        self.functions = functions
        self.by_name = {fn.name: fn for fn in functions.values()}
        self._handlers: dict[str, Handler] = {}
        self.invocations: dict[str, int] = {}
        self._lock = threading.Lock()
        # Test hook: a function logical id -> callable run before the handler (to inject crashes).
        self.faults: dict[str, Callable[[dict[str, Any]], None]] = {}

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
            return self.handler(fn)(event, LambdaContext(fn.name, fn.timeout))
        except Exception as exc:
            traceback.print_exc()
            raise InvocationError(type(exc).__name__, str(exc)) from exc

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
