"""The stream function's execution environments: each a process of its own running the deployed start command.

Deployed, the Lambda Web Adapter starts `functions/run.sh` (uvicorn with `stream:app_from_environment`) in each
execution environment and forwards one request at a time to it; Lambda ends the environment when an invocation runs
past the function's Timeout or its memory grows past MemorySize. Here each environment is a child process serving
the same app factory on a Unix socket only this user can reach, with the function's own environment (its role's
keys, its settings), and the gateway forwards each streamed request to an idle one. While it runs, the runtime
watches the invocation's deadline and the process's resident memory as local/processes.py does for the other
functions, and kills the process on either: a stream cut before its first byte is API Gateway's 504 (timeout) or
502 (killed), one cut later just ends, as a client of the deployed API sees it. A new environment (a cold start)
takes the dead one's place.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.types import Receive, Scope, Send

from functions.errors import error_body
from local.lifetime import exit_with_parent
from local.processes import WATCH_SECONDS, resident_bytes
from local.resources import LocalFunction

# The Lambda Web Adapter's readiness check (infra/streaming.py AWS_LWA_READINESS_CHECK_PATH).
READINESS_PATH = "/api/health"
# Streams at once: more wait for an environment to be idle (deployed, the function's reserved concurrency is 10; the
# local runtime keeps fewer processes of a 1 GB function on a laptop).
MAX_ENVIRONMENTS = 4
# Test hook (BULKAPI_LOCAL_FAULT=stream:sleep|allocate): the runtime names an invocation's fault in this header, which
# the child's wrapper (only) acts on; the gateway drops it from a client's request.
FAULT_HEADER = "x-bulkapi-local-fault"
HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


class _Environment:
    """One execution environment: uvicorn serving the stream app on its own socket, one request at a time."""

    def __init__(self, fn: LocalFunction, folder: str, number: int, start_timeout: float) -> None:
        self.socket_path = str(Path(folder) / f"stream-{number}.sock")
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter, our module
            [sys.executable, "-m", "local.stream_function", self.socket_path],
            cwd=Path(__file__).resolve().parents[1],
            stdin=subprocess.DEVNULL,
            # As Lambda sets them in an execution environment, besides the function's own variables.
            env={
                **os.environ,
                **fn.env,
                "AWS_LAMBDA_FUNCTION_NAME": fn.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory),
            },
        )
        # No client timeout: the runtime's watch ends an invocation at the function's Timeout (StreamFunction._watch).
        self.client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=self.socket_path),
            base_url="http://stream",
            timeout=None,  # noqa: S113
        )
        deadline = time.monotonic() + start_timeout
        with httpx.Client(transport=httpx.HTTPTransport(uds=self.socket_path), base_url="http://stream") as probe:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the stream function exited with {self.process.returncode} at start-up")
                with contextlib.suppress(httpx.TransportError):
                    if probe.get(READINESS_PATH, timeout=1).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError("the stream function did not become ready")
                time.sleep(0.02)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)


class StreamFunction:
    """The stream function as an ASGI app for the gateway: each request runs in an idle environment (process)."""

    def __init__(self, fn: LocalFunction, timeout: float, fault: Any = None, start_timeout: float = 60) -> None:
        self.fn, self.timeout, self.start_timeout = fn, timeout, start_timeout
        # The runtime's fault hook: () -> "sleep" | "allocate" | None for the next invocation.
        self.take_fault = fault or (lambda: None)
        self._folder = tempfile.mkdtemp(prefix="bulkapi-stream-")  # 0700: only this user reaches the sockets
        self._numbers = iter(range(1, 1 << 30))
        self._idle: list[_Environment] = []
        self._all: list[_Environment] = []
        self._starting = 0
        self._lock = threading.Lock()
        self._freed: asyncio.Condition | None = None
        self._idle.append(self._start())

    def _start(self) -> _Environment:
        env = _Environment(self.fn, self._folder, next(self._numbers), self.start_timeout)
        with self._lock:
            self._all.append(env)
        return env

    @property
    def pids(self) -> list[int]:
        """The environments' processes now."""
        with self._lock:
            return sorted(env.process.pid for env in self._all if env.alive)

    def close(self) -> None:
        """End every environment (open streams are cut, as when the runtime is killed)."""
        with self._lock:
            envs, self._all, self._idle = self._all, [], []
        for env in envs:
            env.kill()
        with contextlib.suppress(OSError):
            os.rmdir(self._folder)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        env = await self._take()
        try:
            await self._invoke(env, scope, receive, send)
        finally:
            await self._give_back(env)

    async def _take(self) -> _Environment:
        if self._freed is None:
            self._freed = asyncio.Condition()
        async with self._freed:
            while True:
                with self._lock:
                    while self._idle:
                        env = self._idle.pop()
                        if env.alive:
                            return env
                        self._all.remove(env)
                    grow = len(self._all) + self._starting < MAX_ENVIRONMENTS
                    if grow:
                        self._starting += 1  # counts toward the environments while it starts
                if grow:
                    break
                await self._freed.wait()
        try:  # a cold start, off the event loop
            return await asyncio.get_running_loop().run_in_executor(None, self._start)
        finally:
            with self._lock:
                self._starting -= 1

    async def _give_back(self, env: _Environment) -> None:
        with self._lock:
            if env.alive:
                self._idle.append(env)
            elif env in self._all:
                self._all.remove(env)
        assert self._freed is not None
        async with self._freed:
            self._freed.notify()

    async def _request(self, env: _Environment, scope: Scope, receive: Receive) -> httpx.Request:
        """The gateway's request as the adapter forwards it (the body whole, as an invocation's event has it)."""
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != FAULT_HEADER.encode()]
        fault = self.take_fault()
        if fault is not None:
            headers.append((FAULT_HEADER.encode(), fault.encode()))
        query = scope.get("query_string", b"").decode("latin-1")
        return env.client.build_request(
            scope["method"], scope["path"] + (f"?{query}" if query else ""), headers=headers, content=bytes(body)
        )

    async def _invoke(self, env: _Environment, scope: Scope, receive: Receive, send: Send) -> None:
        request = await self._request(env, scope, receive)
        started = False

        async def forward() -> None:
            nonlocal started
            async with contextlib.aclosing(_stream(env, request)) as chunks:
                async for status, raw_headers, chunk in chunks:
                    if not started:
                        kept = [(k, v) for k, v in raw_headers if k.lower().decode("latin-1") not in HOP_HEADERS]
                        await send({"type": "http.response.start", "status": status, "headers": kept})
                        started = True
                    if chunk:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        forwarding = asyncio.ensure_future(forward())
        # A client that goes away closes the stream to the function too, as the adapter's connection would be: the
        # app then sees its own disconnect and stops the work (and refunds what it did not send).
        gone = asyncio.ensure_future(disconnected())
        try:
            why = await self._watch(env, forwarding, gone)
        finally:
            gone.cancel()
        if why == "disconnect":
            return
        if why is None:
            forwarding.result()  # a gateway-side error (the client went away) ends the request as it would
        elif not started:
            status, code, message = (
                (504, "gateway_timeout", f"the stream function timed out after {self.timeout:.0f} s")
                if why == "timeout"
                else (502, "internal_error", "the stream function's process was killed")
            )
            await _answer(send, status, error_body(code, message))
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _watch(
        self, env: _Environment, forwarding: asyncio.Future[None], gone: asyncio.Future[None]
    ) -> str | None:
        """None once the invocation ended by itself; "disconnect" if the client went away first; "timeout" or
        "memory" if its environment was killed for it."""
        deadline = time.monotonic() + self.timeout
        limit = self.fn.memory * 1024 * 1024
        while not forwarding.done():
            await asyncio.wait([forwarding, gone], timeout=WATCH_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            if forwarding.done():
                break
            if gone.done():
                forwarding.cancel()
                with contextlib.suppress(asyncio.CancelledError, httpx.TransportError):
                    await forwarding
                return "disconnect"
            why = None
            if time.monotonic() >= deadline:
                why = "timeout"
            elif (used := resident_bytes(env.process.pid)) > limit:
                why = "memory"
            if why is not None:
                env.kill()
                forwarding.cancel()
                with contextlib.suppress(asyncio.CancelledError, httpx.TransportError):
                    await forwarding
                print(
                    f"{self.fn.name}: "
                    + (
                        f"Task timed out after {self.timeout:.2f} seconds"
                        if why == "timeout"
                        else f"Runtime.OutOfMemory (resident {used >> 20} MB > MemorySize {self.fn.memory} MB)"
                    )
                    + "; its environment was killed",
                    flush=True,
                )
                return why
        return None


async def _stream(env: _Environment, request: httpx.Request) -> Any:
    response = await env.client.send(request, stream=True)
    try:
        raw = list(response.headers.raw)
        yield response.status_code, raw, b""
        async for chunk in response.aiter_raw():
            yield response.status_code, raw, chunk
    finally:
        await response.aclose()


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


# -- the child ---------------------------------------------------------------------------------------------------
def _with_faults(app: Any) -> Any:
    """The app, with the runtime's injected faults (a header only the runtime sets) done before it runs."""

    async def faulty(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            fault = dict(scope["headers"]).get(FAULT_HEADER.encode())
            if fault == b"raise":
                raise RuntimeError("injected fault: this invocation fails (BULKAPI_LOCAL_FAULT)")
            if fault == b"sleep":
                await asyncio.sleep(3600)
            elif fault == b"allocate":
                hog = [bytearray(b"\x01") * (16 << 20) for _ in range(_memory_mb() // 8 + 4)]
                await asyncio.sleep(10)
                hog.clear()
        await app(scope, receive, send)

    return faulty


def _memory_mb() -> int:
    return int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"))


def _serve(socket_path: str) -> None:
    """functions/run.sh, on a Unix socket: uvicorn calls the factory once (the cold start), then serves."""
    from functions.handlers.stream import app_from_environment

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group; the runtime ends its environments
    exit_with_parent()
    uvicorn.run(
        _with_faults(app_from_environment()),
        uds=socket_path,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    _serve(sys.argv[1])
