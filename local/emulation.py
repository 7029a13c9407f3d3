"""The AWS emulation: moto's server in its own process, so its work does not compete with the handlers for the GIL.

The handlers still run in the runtime's process. moto's Step Functions executor reaches them through
`LambdaFunction._invoke_lambda`, patched in the emulation process to POST the event back to the runtime's
invoke endpoint (a private moto API: moto is pinned in pyproject.toml and a test covers the patch).
Requests are counted by service and operation (for the benchmarks) at `/_bulkapi/requests`.

moto's server applies concurrent requests without a lock: 8 threads x 300 conditional `ADD`s on one DynamoDB item
lost about 7% of the increments, and concurrent SQS receives handed one message to two consumers. The emulation
therefore applies each request to a service whose state the project mutates one at a time (`AtomicDispatcher`).
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from local.lifetime import exit_with_parent

COUNTS_PATH = "/_bulkapi/requests"


def classify(environ: dict[str, Any]) -> str | None:
    """`service.Operation` from the SigV4 scope and the target header / Action / method."""
    path = environ.get("PATH_INFO", "")
    if path.startswith(("/moto-api", "/_bulkapi")):
        return None
    auth = environ.get("HTTP_AUTHORIZATION", "")
    service = "unknown"
    if "Credential=" in auth:
        scope = auth.split("Credential=")[1].split(",")[0].split("/")
        service = scope[3] if len(scope) > 3 else "unknown"
    elif "X-Amz-Credential" in environ.get("QUERY_STRING", ""):
        service = "s3"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return f"{service}.{target.split('.')[-1]}"
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if action:
        return f"{service}.{action[0]}"
    method = environ.get("REQUEST_METHOD", "GET")
    if service == "s3":
        query = environ.get("QUERY_STRING", "")
        ops = {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}
        op = "MultipartUpload" if "uploadId" in query or "uploads" in query else ops.get(method, method)
        return f"s3.{op}"
    return f"{service}.{method} {path.split('/')[1] if '/' in path else path}"


class CountingApp:
    """WSGI middleware counting requests; GET /_bulkapi/requests returns the counts, DELETE resets them."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == COUNTS_PATH:
            with self.lock:
                body = json.dumps(dict(self.counts)).encode()
                if environ.get("REQUEST_METHOD") == "DELETE":
                    self.counts.clear()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        key = classify(environ)
        if key:
            with self.lock:
                self.counts[key] += 1
        return self.app(environ, start_response)


# The services whose state the project changes concurrently. Lambda is left out: an invocation runs a handler
# for up to its timeout, and the handler itself calls the others.
ATOMIC_SERVICES = frozenset({"dynamodb", "sqs", "s3", "stepfunctions", "events"})


class AtomicDispatcher:
    """Runs each request to an `ATOMIC_SERVICES` backend under one lock, as one step, like the real services.

    One lock for all of them, not one per service, because moto calls across services inside a request (an S3
    write or an EventBridge put sends to SQS in-process). An SQS long poll gives the lock up while it waits
    (`release_while_waiting`), so it holds up nobody. The request body is read before the lock is taken, so a
    slow upload does not hold up the others either. The cost, measured with bench/e2e.py, is in the commit.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.held = threading.local()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        backend = self.app.get_application(environ)
        if getattr(backend, "service", None) not in ATOMIC_SERVICES:
            return backend(environ, start_response)  # type: ignore[no-any-return]
        _buffer_body(environ)
        with self.lock:
            self.held.lock = True
            try:
                return backend(environ, start_response)  # type: ignore[no-any-return]
            finally:
                self.held.lock = False

    def release_while_waiting(self, wait: Callable[[], None]) -> None:
        """Run `wait` without the lock when this thread holds it (an SQS long poll inside a request)."""
        if not getattr(self.held, "lock", False):
            wait()
            return
        self.lock.release()
        try:
            wait()
        finally:
            self.lock.acquire()


def _buffer_body(environ: dict[str, Any]) -> None:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length and not isinstance(environ.get("wsgi.input"), io.BytesIO):
        environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length))


def _patch_sqs_wait(dispatcher: AtomicDispatcher) -> None:
    from moto.sqs.models import Queue

    original = Queue.wait_for_messages

    def wait_for_messages(self: Any, timeout: int) -> None:
        dispatcher.release_while_waiting(lambda: original(self, timeout))

    Queue.wait_for_messages = wait_for_messages  # type: ignore[method-assign]


def _patch_lambda(invoke_url: str) -> None:
    from moto.awslambda.models import LambdaFunction

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        data = json.dumps({"function": self.function_name, "event": event}).encode()
        request = urllib.request.Request(invoke_url, data=data, method="POST")  # noqa: S310 - loopback
        try:
            with urllib.request.urlopen(request, timeout=900) as response:  # noqa: S310
                answer = json.loads(response.read())
        except OSError as exc:
            return json.dumps({"errorMessage": str(exc), "errorType": "ServiceException"}), True, ""
        return str(answer["payload"]), bool(answer["errored"]), ""

    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]


def serve(port: int, invoke_url: str) -> None:
    """Run moto's server on 127.0.0.1:port (blocks); called in the emulation process."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.server import MotoRequestHandler  # type: ignore[attr-defined]
    from werkzeug.serving import make_server

    # moto's Step Functions executor calls Lambda back on localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _patch_lambda(invoke_url)
    from moto.core.config import default_user_config

    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    dispatcher = AtomicDispatcher(DomainDispatcherApplication(create_backend_app))
    _patch_sqs_wait(dispatcher)
    app = CountingApp(dispatcher)
    exit_with_parent()
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    server.serve_forever()


def free_port() -> int:
    """A free loopback port (the emulation binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmulationProcess:
    """Starts, watches and stops the emulation process."""

    def __init__(self, invoke_url: str) -> None:
        self.invoke_url = invoke_url
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        """Start it and wait until it answers."""
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter, our module
            [sys.executable, "-m", "local.emulation", "--port", str(self.port), "--invoke-url", self.invoke_url],
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the AWS emulation exited with {self.process.returncode}")
            try:
                self.counts()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the AWS emulation did not start")

    def counts(self, reset: bool = False) -> dict[str, int]:
        """Requests served so far by `service.Operation` (optionally resetting the counters)."""
        request = urllib.request.Request(self.endpoint + COUNTS_PATH, method="DELETE" if reset else "GET")  # noqa: S310
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return dict(json.loads(response.read()))

    def stop(self) -> None:
        """Terminate the process (its state is in memory only)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description="bulkapi's AWS emulation process (started by the local runtime)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--invoke-url", required=True)
    args = parser.parse_args()
    serve(args.port, args.invoke_url)


if __name__ == "__main__":
    main()
