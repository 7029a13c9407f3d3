"""Function processes: each one a Lambda execution environment for the queue-driven handlers.

An environment runs one invocation at a time. One that dies (killed, out of memory, a crash in native code) fails
only the invocation it was running, as Lambda reports `Runtime.ExitError`, and a new process takes its place: the
event source then retries that batch through the queue like any failed invocation. (A ProcessPoolExecutor cannot
do this: one dead worker breaks the whole pool for good.)
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from local.lifetime import exit_with_parent

# What runs an invocation in a child: (handler path, event, function name, timeout, the function's environment)
# -> (ok, result or error).
Runner = Callable[[str, dict[str, Any], str, int, dict[str, str]], tuple[bool, Any]]


class EnvironmentExited(Exception):
    """The process died while it ran an invocation."""

    def __init__(self, exitcode: int | None) -> None:
        how = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit code {exitcode}"
        super().__init__(f"the function process exited ({how}) during the invocation")


def _serve(conn: Connection, warm: Callable[[], None], run: Runner) -> None:
    # Ctrl-C reaches the whole process group; only the runtime decides when its function processes end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()
    warm()
    conn.send(os.getpid())
    while True:
        try:
            handler, event, name, timeout, env = conn.recv()
        except EOFError:  # the runtime closed its end: stop
            return
        try:
            answer = run(handler, event, name, timeout, env)
        except BaseException as exc:  # the runner catches handler errors; this is the runner itself failing
            answer = (False, (type(exc).__name__, str(exc), traceback.format_exc()))
        conn.send(answer)


class _Environment:
    def __init__(self, ctx: Any, warm: Callable[[], None], run: Runner, start_timeout: float) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, warm, run), name="bulkapi-function", daemon=True)
        self.process.start()
        child.close()
        if not self.conn.poll(start_timeout):
            self.stop()
            raise RuntimeError("a function process did not start")
        self.pid: int = self.conn.recv()

    def call(self, request: tuple[str, dict[str, Any], str, int, dict[str, str]]) -> tuple[bool, Any]:
        try:
            self.conn.send(request)
            ready = multiprocessing.connection.wait([self.conn, self.process.sentinel])
            if self.conn in ready:  # an answer, even if the process died right after sending it
                answer: tuple[bool, Any] = self.conn.recv()
                return answer
        except (EOFError, OSError):
            pass
        self.process.join(timeout=5)
        raise EnvironmentExited(self.process.exitcode)

    def stop(self) -> None:
        self.conn.close()
        with contextlib.suppress(ProcessLookupError):
            if self.process.pid is not None:
                os.kill(self.process.pid, signal.SIGTERM)


class FunctionProcesses:
    """A fixed number of function processes; an invocation waits for an idle one, a dead one is replaced."""

    def __init__(self, count: int, warm: Callable[[], None], run: Runner, start_timeout: float = 120) -> None:
        # spawn, not fork: this process has threads (pollers, the API server) and fork copies their locks.
        # The children inherit the process environment (the emulation's endpoint and credentials); each invocation
        # brings its function's own environment, which the child composes the handler from (functions/composition.py).
        self._ctx = multiprocessing.get_context("spawn")
        self._warm, self._run, self._start_timeout = warm, run, start_timeout
        self._idle: queue.Queue[_Environment] = queue.Queue()
        self._all: list[_Environment] = []
        self._lock = threading.Lock()
        self.replaced = 0
        self._closed = False
        starting = [threading.Thread(target=self._add) for _ in range(count)]
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join()
        if len(self._all) != count:
            self.close()
            raise RuntimeError("the function processes did not start")

    @property
    def pids(self) -> list[int]:
        """The live function processes."""
        with self._lock:
            return sorted(env.pid for env in self._all)

    def _add(self) -> None:
        env = _Environment(self._ctx, self._warm, self._run, self._start_timeout)
        with self._lock:
            self._all.append(env)
        self._idle.put(env)

    def _replace(self, dead: _Environment) -> None:
        with self._lock:
            if dead in self._all:
                self._all.remove(dead)
            if self._closed:
                return
            self.replaced += 1
        dead.stop()
        self._add()

    def invoke(
        self, handler: str, event: dict[str, Any], name: str, timeout: int, env: dict[str, str]
    ) -> tuple[bool, Any]:
        """Run one invocation in an idle process; raises EnvironmentExited if its process dies meanwhile."""
        while True:
            process = self._idle.get()
            if process.process.is_alive():
                break
            self._replace(process)  # died while idle: nothing was lost, start a new one and use it instead
        try:
            answer = process.call((handler, event, name, timeout, env))
        except EnvironmentExited:
            # Lambda starts a new execution environment; the failed invocation is the event source's to retry.
            threading.Thread(
                target=self._replace, args=(process,), name="replace-function-process", daemon=True
            ).start()
            raise
        self._idle.put(process)
        return answer

    def close(self) -> None:
        """End every process (in-flight invocations are abandoned, as when a runtime is killed)."""
        with self._lock:
            self._closed = True
            envs, self._all = self._all, []
        for env in envs:
            env.stop()
