"""Local Lambda: call the real `lambda_handler` of a function, as AWS would, with a Lambda-like context.

Every function of the stack except the stream function (processes of its own running its start command:
local/stream_function.py) runs in function processes (local/processes.py), the way Lambda gives each function, and
each concurrent invocation of it, its own execution environment: their CPU work runs beside the API and the pollers
instead of competing for one GIL, each function's memory is measured on its own, a process that dies is replaced,
and an invocation that runs past its function's Timeout or MemorySize is killed as Lambda kills it.

moto cannot run a function without Docker. Step Functions tasks reach functions through moto's Lambda
backend, whose `LambdaFunction._invoke_lambda` the emulation process patches to call back here
(local/emulation.py); tests/integration/test_pipeline.py covers that path.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import json
import os
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions.adapters.aws import credentials as aws_credentials
from functions.composition import Function
from local.processes import EnvironmentExited, FunctionProcesses, InvocationOutOfMemory, InvocationTimedOut
from local.resources import ACCOUNT, REGION, LocalFunction

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Powertools and our handlers read."""

    function_name: str
    timeout_seconds: float
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


SPLITTER = "functions.handlers.splitter.lambda_handler"
WORKER = "functions.handlers.worker.lambda_handler"
DEAD_LETTER = "functions.handlers.dead_letter.lambda_handler"
FINALIZER = "functions.handlers.finalizer.lambda_handler"
# Streams a whole result (up to a million rows) through csv: CPU-bound like the worker, in a process of its own.
VARIANTS = "functions.handlers.variants.lambda_handler"
WEBHOOKS = "functions.handlers.webhooks.lambda_handler"
SWEEPER = "functions.handlers.sweeper.lambda_handler"
FETCHER = "functions.handlers.fetcher.lambda_handler"
API = "functions.handlers.api.lambda_handler"
AUTHORIZER = "functions.handlers.authorizer.lambda_handler"

# Functions that run in function processes, and the pool of processes (execution environments) each runs in: every
# function environments of its own, as in Lambda, so memory is measured and limited per function (bench/e2e.py). The
# worker pool has `processes` processes, the others one each.
POOLS: dict[str, str] = {
    SPLITTER: "splitter",
    WORKER: "worker",
    DEAD_LETTER: "dead_letter",
    FINALIZER: "finalizer",
    VARIANTS: "variants",
    WEBHOOKS: "webhooks",
    SWEEPER: "sweeper",
    FETCHER: "fetcher",
    API: "api",
    AUTHORIZER: "authorizer",
}
# The front door's pools grow while every environment is busy, as Lambda scales out, up to this many (requests
# beyond wait for one). The api starts with two, so one slow request (a webhook test waiting on its receiver) does
# not make the next wait for a cold start.
# The fetcher too: a fetch can take minutes, and with one process a slow URL held every other account's fetch
# (tests/e2e/test_url_jobs.py's fairness test); 4 is the local runtime's concurrency per event source.
GROWING_POOLS: dict[str, int] = {"api": 8, "authorizer": 4, "fetcher": 4}
INITIAL_PROCESSES: dict[str, int] = {"api": 2}
ISOLATABLE: frozenset[str] = frozenset(POOLS)
# The largest BULKAPI_LOCAL_TIMEOUT_FACTOR: a slow machine may lengthen every timeout this much, never end it.
MAX_TIMEOUT_FACTOR = 20.0
# Pools started at their first invocation (a cold start of a second or two) rather than with the runtime: functions
# that most local runs never invoke, or only minutes in.
LAZY_POOLS: frozenset[str] = frozenset({"dead_letter", "sweeper", "fetcher"})
# Test hook (BULKAPI_LOCAL_FAULT): what an injected fault makes an invocation do. `raise`: the handler raises;
# `sleep`: it sleeps past its timeout; `allocate`: it allocates memory past its MemorySize.
FAULT_KINDS = ("raise", "sleep", "allocate")
# The AWS services the functions call: the fork server reads their service models once (preload).
SERVICES = ("s3", "dynamodb", "sqs", "stepfunctions", "events", "secretsmanager")


def parse_faults(spec: str) -> dict[str, tuple[str, int | None]]:
    """`webhooks:raise,worker:sleep:1` -> {"webhooks": ("raise", None), "worker": ("sleep", 1)}: the function (its
    handler module), the fault, and how many invocations get it (none: every one)."""
    faults: dict[str, tuple[str, int | None]] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        function, _, rest = item.partition(":")
        kind, _, times = rest.partition(":")
        if kind not in FAULT_KINDS or not function:
            raise ValueError(f"BULKAPI_LOCAL_FAULT: {item!r} is not <function>:{'|'.join(FAULT_KINDS)}[:<times>]")
        faults[function] = (kind, int(times) if times else None)
    return faults


# The stream function's Lambda handler is its start script (infra/streaming.py); local/stream_function.py runs it.
STREAM = "functions/run.sh"


def short_name(handler: str) -> str:
    """functions.handlers.worker.lambda_handler -> worker; the stream function's start script -> stream."""
    if handler == STREAM:
        return "stream"
    return handler.removeprefix("functions.handlers.").removesuffix(".lambda_handler")


# Handlers that keep per-request state in module globals (the api handler's resolver context, ports, key cache):
# like Lambda, each execution environment serves one event at a time, and an invocation that finds all of them
# busy gets a new one. (Its resolver keeps the event itself: Powertools' own copy is a class attribute shared by
# every module instance; see RequestResolver.) The others are reentrant: their pollers call them from threads.
ONE_EVENT_AT_A_TIME: frozenset[str] = frozenset({"functions.handlers.api.lambda_handler"})


def _compose(entry: Any, env: dict[str, str]) -> Handler:
    """The handler composed from the function's own environment (its composition root, functions/composition.py),
    making its AWS calls with the function's own keys (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` of `env`, as
    Lambda puts its role's keys in the function's environment), so that each is checked against its role."""
    if not isinstance(entry, Function):
        raise TypeError(f"{entry!r} is not a functions.composition.Function")
    keys = (env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY"))
    if keys[0] is None or keys[1] is None:
        return entry.build(env)
    key_id, secret = keys[0], keys[1]
    with aws_credentials(key_id, secret):
        built = entry.build(env)

    def as_its_role(event: Any, context: Any) -> Any:
        with aws_credentials(key_id, secret):
            return built(event, context)

    return as_its_role


def _new_environment(handler: str, env: dict[str, str]) -> Handler:
    """A fresh instance of the handler's module (its own globals, nothing shared but what it imports), composed."""
    module_name, _, attr = handler.rpartition(".")
    spec = importlib.util.find_spec(module_name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return _compose(getattr(module, attr), env)


def load_handler(handler: str) -> Any:
    module, _, attr = handler.rpartition(".")
    return getattr(importlib.import_module(module), attr)


# Handlers composed in this function process, by (handler, function name): once per execution environment.
_composed: dict[tuple[str, str], Handler] = {}


def _warm(pool: str, handlers: list[str]) -> None:
    # Metrics are disabled locally; Powertools still warns on every flush with nothing in it (as in the runtime).
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    # Named after its function (`ps`, /proc/<pid>/comm: fn-worker, ...), so tools and tests can tell them apart.
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(f"fn-{pool}"[:15])
    # A function process holds no runtime keys: each invocation brings its function's own (its role's), and a call
    # made outside one (a thread the handler did not give its context) is refused as from an unknown key.
    os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = "LOCALNOFUNCTION", "none"
    # Import the handlers (and through them boto3, Powertools, the enrichment libraries) before the first event.
    # A process forked from the fork server has them already (local/function_preload.py), and the service models.
    for handler in handlers:
        load_handler(handler)


def preload() -> None:
    """Load what every function process needs before its first event, holding no keys and no function's state: the
    handlers' modules, the AWS service models (read by clients built with placeholder keys and thrown away) and the
    email tables. Run once, in the fork server the function processes are forked from (local/function_preload.py)."""
    import boto3

    for handler in POOLS:
        load_handler(handler)
    boto3.setup_default_session()
    for service in SERVICES:
        # A forked process's first client of each service then costs ~5 ms instead of ~50 ms of reading its model.
        boto3.DEFAULT_SESSION.client(
            service,
            region_name="us-east-1",
            aws_access_key_id="preload",
            aws_secret_access_key="preload",  # noqa: S106 (a placeholder)
        )
    from functions.enrich import enrich_values

    # The Public Suffix List and email-validator's tables load on first use; the geocoder and GeoIP data are left to
    # the first phone or ip job (they are large, and most processes never need them).
    enrich_values("email", ["warm.up@example.com"])


def _peak_rss_kb() -> int:
    """This process's peak resident memory since the last reset (VmHWM), in KiB; 0 where /proc has none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_peak_rss() -> None:
    # Linux: writing 5 to clear_refs resets VmHWM to the current RSS, so each invocation reports its own peak.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _drop_metrics() -> None:
    # Deployed, each invocation flushes its metrics. Locally they are disabled, and Powertools then never clears them:
    # a long-lived process reached its 100-value limit and printed the set to stdout every 100 batches.
    from functions.observability import metrics

    metrics.clear_metrics()


def _injected(fault: str, timeout: float, memory_mb: int) -> None:
    """Do what a BULKAPI_LOCAL_FAULT asks of this invocation."""
    if fault == "raise":
        raise RuntimeError("injected fault: this invocation fails (BULKAPI_LOCAL_FAULT)")
    if fault == "sleep":
        time.sleep(timeout * 2 + 5)  # killed at its timeout long before it wakes
    elif fault == "allocate":
        # Written, not only reserved, so the pages are resident; capped at twice the limit in case nothing kills it.
        hog = [bytearray(b"\x01") * (16 << 20) for _ in range(memory_mb // 8 + 4)]
        time.sleep(10)
        hog.clear()


def _invoke_in_child(
    handler: str,
    event: dict[str, Any],
    name: str,
    timeout: float,
    env: dict[str, str],
    memory_mb: int,
    fault: str | None,
) -> tuple[bool, Any]:
    """Run one invocation; the answer carries the process's peak memory during it (as Lambda's REPORT line does)."""
    _reset_peak_rss()
    try:
        composed = _composed.get((handler, name))
        if composed is None:
            composed = _composed[(handler, name)] = _compose(load_handler(handler), env)
        if fault is not None:
            _injected(fault, timeout, memory_mb)
        return True, (composed(event, LambdaContext(name, timeout, memory_mb)), _peak_rss_kb())
    except Exception as exc:
        return False, (type(exc).__name__, str(exc), traceback.format_exc())
    finally:
        _drop_metrics()


class Invoker:
    """Runs functions by name or logical id; counts invocations for tests and benchmarks."""

    def __init__(
        self,
        functions: dict[str, LocalFunction],
        processes: int = 0,
        poison_batch: int | None = None,
        hold_splitter: str | None = None,
        *,
        timeout_factor: float = 1.0,
        faults: str = "",
    ) -> None:
        if not 0 < timeout_factor <= MAX_TIMEOUT_FACTOR:
            raise ValueError(f"the timeout factor must be > 0 and <= {MAX_TIMEOUT_FACTOR}: timeouts scale, never go")
        self.functions = functions
        # Every function Timeout is multiplied by this (BULKAPI_LOCAL_TIMEOUT_FACTOR) for slow machines or tests.
        self.timeout_factor = timeout_factor
        # Test hook (BULKAPI_LOCAL_FAULT): function (handler module) -> (fault kind, invocations left or None: all).
        self.injected = parse_faults(faults)
        self.processes = processes
        self.by_name = {fn.name: fn for fn in functions.values()}
        self._handlers: dict[str, Handler] = {}
        self.invocations: dict[str, int] = {}
        self._lock = threading.Lock()
        self._cold_start = threading.Lock()
        # Test hook: a function logical id -> callable run before the handler (to inject crashes).
        self.faults: dict[str, Callable[[dict[str, Any]], None]] = {}
        # Test hook (BULKAPI_LOCAL_POISON_BATCH): work batch number that fails every time, for every job.
        self.poison_batch = poison_batch
        # Test hook (BULKAPI_LOCAL_HOLD_SPLITTER): while this file exists, splitter invocations wait, as behind a
        # backlog of large files (the S3 events queue up; nothing is lost).
        self.hold_splitter = hold_splitter
        # Function processes by pool name (POOLS); none when `processes` is 0 (everything in this process).
        self.pools: dict[str, FunctionProcesses] = {}
        # The highest peak memory (KiB) an invocation of each function reported, since the last reset.
        self.peak_rss_kb: dict[str, int] = {}
        # Idle execution environments of the ONE_EVENT_AT_A_TIME functions, and how many each has.
        self._idle: dict[str, list[Handler]] = {}
        self.environments: dict[str, int] = {}
        present = {fn.handler for fn in functions.values()}
        for function, (kind, _) in self.injected.items():
            fn = next((f for f in functions.values() if short_name(f.handler) == function), None)
            if fn is None:
                raise ValueError(f"BULKAPI_LOCAL_FAULT: no function {function}")
            if kind != "raise" and not self.isolated(fn) and not (fn.handler == STREAM and processes > 0):
                raise ValueError(f"BULKAPI_LOCAL_FAULT: {function} runs in the runtime's process; only raise applies")
        self._members: dict[str, list[str]] = {}
        for handler in sorted(present & ISOLATABLE):
            self._members.setdefault(POOLS[handler], []).append(handler)
        if processes > 0:
            members = {pool: handlers for pool, handlers in self._members.items() if pool not in LAZY_POOLS}
            starting = {
                pool: threading.Thread(target=self._start_pool, args=(pool, handlers, processes))
                for pool, handlers in members.items()
            }
            for thread in starting.values():
                thread.start()
            for thread in starting.values():
                thread.join()
            if set(self.pools) != set(members):
                self.close()
                raise RuntimeError("the function processes did not start")

    def _start_pool(self, pool: str, handlers: list[str], processes: int) -> None:
        size = processes if pool == "worker" else INITIAL_PROCESSES.get(pool, 1)
        self.pools[pool] = FunctionProcesses(
            size, functools.partial(_warm, pool, handlers), _invoke_in_child, limit=GROWING_POOLS.get(pool)
        )

    @property
    def isolated_pids(self) -> list[int]:
        """The function processes now, of every pool (a dead one is replaced by a new one)."""
        return sorted(pid for pool in self.pools.values() for pid in pool.pids)

    def pool_pids(self) -> dict[str, list[int]]:
        """The function processes now, by pool (splitter, worker, finalizer)."""
        return {name: pool.pids for name, pool in self.pools.items()}

    def isolated(self, fn: LocalFunction) -> bool:
        """Whether this function's invocations run in function processes."""
        return self.processes > 0 and fn.handler in POOLS

    def pool_size(self, fn: LocalFunction) -> int:
        """How many processes run this function's invocations (0: it runs in this process)."""
        if not self.isolated(fn):
            return 0
        pool = POOLS[fn.handler]
        return self.processes if pool == "worker" else GROWING_POOLS.get(pool, 1)

    def _pool(self, fn: LocalFunction) -> FunctionProcesses:
        name = POOLS[fn.handler]
        pool = self.pools.get(name)
        if pool is None:
            with self._cold_start:  # one cold start at a time; the others wait for it
                if name not in self.pools:
                    self._start_pool(name, self._members[name], self.processes)
                pool = self.pools[name]
        return pool

    def close(self) -> None:
        """Stop the function processes (in-flight invocations are abandoned, as when a runtime is killed)."""
        for pool in self.pools.values():
            pool.close()

    def handler(self, fn: LocalFunction) -> Handler:
        """Import the function's handler the way the Lambda runtime does (module path + attribute), composed from
        exactly the function's own environment (no other function's settings are visible to it)."""
        with self._lock:
            if fn.logical_id not in self._handlers:
                self._handlers[fn.logical_id] = _compose(load_handler(fn.handler), fn.env)
            return self._handlers[fn.logical_id]

    def compose(self, logical_id: str, handler: Handler | None) -> None:
        """Run an in-process function with this handler from now on (tests: one composed with other Deps); None:
        its own composition again."""
        fn = self.functions[logical_id]
        if self.isolated(fn) or fn.handler in ONE_EVENT_AT_A_TIME:
            raise ValueError(f"{fn.name} does not run in this process with one composition")
        with self._lock:
            if handler is None:
                self._handlers.pop(logical_id, None)
            else:
                self._handlers[logical_id] = handler

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """Invoke synchronously; raises InvocationError when the handler raises."""
        fn = self.functions[logical_id]
        with self._lock:
            self.invocations[logical_id] = self.invocations.get(logical_id, 0) + 1
        if self.poison_batch is not None and fn.handler == WORKER and event.get("Records"):
            return self._with_poison(fn, event, self.poison_batch)
        if self.hold_splitter is not None and fn.handler == SPLITTER:
            while os.path.exists(self.hold_splitter):
                time.sleep(0.1)
        return self._invoke(fn, event)

    def _with_poison(self, fn: LocalFunction, event: dict[str, Any], poison: int) -> Any:
        """The worker as if its record handler raised on every delivery of work batch `poison` (of any job):
        those records are reported failed (partial batch failure), the others are processed as usual."""
        records = event["Records"]
        poisoned = [r for r in records if json.loads(r.get("body") or "{}").get("batch") == poison]
        if not poisoned:
            return self._invoke(fn, event)
        print(f"{fn.name}: work batch {poison} fails on purpose (BULKAPI_LOCAL_POISON_BATCH)", flush=True)
        rest = [r for r in records if r not in poisoned]
        result = self._invoke(fn, {**event, "Records": rest}) if rest else {"batchItemFailures": []}
        failures = list(result.get("batchItemFailures", [])) + [{"itemIdentifier": r["messageId"]} for r in poisoned]
        return {**result, "batchItemFailures": failures}

    def take_fault(self, fn: LocalFunction) -> str | None:
        """The injected fault (BULKAPI_LOCAL_FAULT) this invocation of `fn` gets, if any; counts it."""
        with self._lock:
            function = short_name(fn.handler)
            if function not in self.injected:
                return None
            kind, left = self.injected[function]
            if left is not None:
                if left <= 0:
                    return None
                self.injected[function] = (kind, left - 1)
        print(f"{fn.name}: this invocation gets the injected fault {kind!r} (BULKAPI_LOCAL_FAULT)", flush=True)
        return kind

    def _invoke(self, fn: LocalFunction, event: dict[str, Any]) -> Any:
        try:
            fault = self.faults.get(fn.logical_id)
            if fault is not None:
                fault(event)
            injected = self.take_fault(fn)
            if self.isolated(fn):
                return self._invoke_isolated(fn, event, injected)
            if injected is not None:
                _injected(injected, fn.timeout, fn.memory)
            try:
                if fn.handler in ONE_EVENT_AT_A_TIME:
                    return self._invoke_in_environment(fn, event)
                return self.handler(fn)(event, LambdaContext(fn.name, fn.timeout * self.timeout_factor, fn.memory))
            finally:
                _drop_metrics()
        except InvocationError:
            raise
        except Exception as exc:
            traceback.print_exc()
            raise InvocationError(type(exc).__name__, str(exc)) from exc

    def _invoke_in_environment(self, fn: LocalFunction, event: dict[str, Any]) -> Any:
        with self._lock:
            idle = self._idle.setdefault(fn.logical_id, [])
            handler = idle.pop() if idle else None
            if handler is None:
                self.environments[fn.logical_id] = created = self.environments.get(fn.logical_id, 0) + 1
        if handler is None:
            # The first environment is the imported module itself (what tests patch); the others are new instances.
            handler = self.handler(fn) if created == 1 else _new_environment(fn.handler, fn.env)
        try:
            return handler(event, LambdaContext(fn.name, fn.timeout * self.timeout_factor, fn.memory))
        finally:
            with self._lock:
                self._idle[fn.logical_id].append(handler)

    def _invoke_isolated(self, fn: LocalFunction, event: dict[str, Any], fault: str | None) -> Any:
        pool = self._pool(fn)
        timeout = fn.timeout * self.timeout_factor
        try:
            ok, value = pool.invoke((fn.handler, event, fn.name, timeout, fn.env, fn.memory, fault))
        except InvocationTimedOut as exc:
            # What Lambda logs and answers; its environment is gone (the next invocation is a cold start).
            print(f"{fn.name}: {exc}; a new function process replaces it", flush=True)
            raise InvocationError("Sandbox.Timedout", str(exc)) from exc
        except InvocationOutOfMemory as exc:
            print(f"{fn.name}: Runtime.OutOfMemory: {exc}; a new function process replaces it", flush=True)
            raise InvocationError("Runtime.OutOfMemory", str(exc)) from exc
        except EnvironmentExited as exc:
            print(f"{fn.name}: {exc}; a new function process replaces it", flush=True)
            raise InvocationError("Runtime.ExitError", str(exc)) from exc
        if ok:
            result, peak_kb = value
            name = POOLS[fn.handler]
            with self._lock:
                self.peak_rss_kb[name] = max(self.peak_rss_kb.get(name, 0), int(peak_kb))
            return result
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
