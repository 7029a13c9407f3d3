"""Function processes: each one a Lambda execution environment for the queue-driven handlers.

An environment runs one invocation at a time. One that dies (killed, out of memory, a crash in native code) fails
only the invocation it was running, as Lambda reports `Runtime.ExitError`, and a new process takes its place: the
event source then retries that batch through the queue like any failed invocation. (A ProcessPoolExecutor cannot
do this: one dead worker breaks the whole pool for good.)

As Lambda does, the runtime ends an invocation that runs past its function's timeout (`Task timed out`) or whose
process grows past its memory size (`Runtime.OutOfMemory`): it kills the process while it waits for the answer,
checking the deadline and the process's resident memory every WATCH_SECONDS.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from local.lifetime import exit_with_parent

# What runs an invocation in a child: (handler path, event, function name, timeout, the function's environment,
# memory size in MB, an injected fault or None) -> (ok, result or error).
Request = tuple[str, dict[str, Any], str, float, dict[str, str], int, str | None]
Runner = Callable[[str, dict[str, Any], str, float, dict[str, str], int, str | None], tuple[bool, Any]]
# How often a running invocation's deadline and memory are checked: an invocation overruns by at most this much.
WATCH_SECONDS = 0.05
_PAGE = os.sysconf("SC_PAGE_SIZE")
# Imported once by the fork server the function processes are forked from (local/function_preload.py).
PRELOAD = ["local.function_preload"]


class EnvironmentExited(Exception):
    """The process died while it ran an invocation."""

    def __init__(self, exitcode: int | None) -> None:
        how = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit code {exitcode}"
        super().__init__(f"the function process exited ({how}) during the invocation")


class InvocationTimedOut(Exception):
    """The invocation ran past its timeout; its process was killed."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Task timed out after {seconds:.2f} seconds")
        self.seconds = seconds


class InvocationOutOfMemory(Exception):
    """The invocation's process grew past the function's memory size; it was killed."""

    def __init__(self, memory_mb: int, used_mb: int) -> None:
        super().__init__(
            f"Runtime exited with error: signal: killed (resident {used_mb} MB > MemorySize {memory_mb} MB)"
        )
        self.memory_mb, self.used_mb = memory_mb, used_mb


def resident_bytes(pid: int) -> int:
    """A process's resident memory now (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _serve(conn: Connection, environ: dict[str, str], warm: Callable[[], None], run: Runner) -> None:
    # Ctrl-C reaches the whole process group; only the runtime decides when its function processes end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()
    # The fork server started with the environment of its time; a process gets the runtime's environment of now
    # (a second runtime in one test process has another emulation endpoint), as a spawned process would.
    os.environ.clear()
    os.environ.update(environ)
    warm()
    conn.send(os.getpid())
    while True:
        try:
            handler, event, name, timeout, env, memory, fault = conn.recv()
        except EOFError:  # the runtime closed its end: stop
            return
        try:
            answer = run(handler, event, name, timeout, env, memory, fault)
        except BaseException as exc:  # the runner catches handler errors; this is the runner itself failing
            answer = (False, (type(exc).__name__, str(exc), traceback.format_exc()))
        conn.send(answer)


class _Environment:
    def __init__(self, ctx: Any, warm: Callable[[], None], run: Runner, start_timeout: float) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_serve, args=(child, dict(os.environ), warm, run), name="bulkapi-function", daemon=True
        )
        self.process.start()
        child.close()
        if not self.conn.poll(start_timeout):
            self.stop()
            raise RuntimeError("a function process did not start")
        self.pid: int = self.conn.recv()

    def call(self, request: Request) -> tuple[bool, Any]:
        timeout, memory_mb = request[3], request[5]
        deadline = time.monotonic() + timeout
        try:
            self.conn.send(request)
            while True:
                ready = multiprocessing.connection.wait([self.conn, self.process.sentinel], timeout=WATCH_SECONDS)
                if self.conn in ready:  # an answer, even if the process died right after sending it
                    answer: tuple[bool, Any] = self.conn.recv()
                    return answer
                if ready:  # the process ended
                    break
                if time.monotonic() >= deadline:
                    self.kill()
                    raise InvocationTimedOut(timeout)
                used = resident_bytes(self.pid)
                if used > memory_mb * 1024 * 1024:
                    self.kill()
                    raise InvocationOutOfMemory(memory_mb, -(-used // (1024 * 1024)))
        except (EOFError, OSError):
            pass
        self.process.join(timeout=5)
        raise EnvironmentExited(self.process.exitcode)

    def kill(self) -> None:
        """End the process now (Lambda's runtime is stopped the same way: nothing of the invocation runs on)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.process.join(timeout=5)

    def stop(self) -> None:
        self.conn.close()
        with contextlib.suppress(ProcessLookupError):
            if self.process.pid is not None:
                os.kill(self.process.pid, signal.SIGTERM)


class FunctionProcesses:
    """Function processes: `count` at the start, up to `limit` when every one is busy (a new one is a cold start);
    an invocation waits for an idle one once there are `limit`, and a dead one is replaced."""

    def __init__(
        self,
        count: int,
        warm: Callable[[], None],
        run: Runner,
        start_timeout: float = 120,
        limit: int | None = None,
    ) -> None:
        # A fork server, not fork: this process has threads (pollers, the API server) and fork copies their locks.
        # The server is a single-threaded process that has imported what every function imports (PRELOAD); each
        # function process is forked from it, so a start costs a fork, not ~0.5 s of a core importing boto3,
        # Powertools, pydantic and the handlers again (a test run starts some 280 of them).
        # The children get the process environment (the emulation's endpoint and credentials); each invocation
        # brings its function's own environment, which the child composes the handler from (functions/composition.py).
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(PRELOAD)
        self._warm, self._run, self._start_timeout = warm, run, start_timeout
        self._idle: queue.Queue[_Environment] = queue.Queue()
        self._all: list[_Environment] = []
        self._lock = threading.Lock()
        self.replaced = 0
        self._closed = False
        self._limit = max(count, limit or count)
        self._growing = 0
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

    def _may_grow(self) -> bool:
        with self._lock:
            grow = len(self._all) + self._growing < self._limit and not self._closed
            if grow:
                self._growing += 1
            return grow

    def _grow(self) -> _Environment:
        try:
            env = _Environment(self._ctx, self._warm, self._run, self._start_timeout)
        finally:
            with self._lock:
                self._growing -= 1
        with self._lock:
            self._all.append(env)
        return env

    def _take(self) -> _Environment:
        """An idle process; a new one (a cold start) when all are busy and the limit allows, else the next to be idle.
        (No spare is kept warm: starting one in the background took a core from the invocations running meanwhile,
        and made bench/e2e.py's first job measurably slower.)"""
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._grow() if self._may_grow() else self._idle.get()

    def _replace(self, dead: _Environment) -> None:
        with self._lock:
            if dead in self._all:
                self._all.remove(dead)
            if self._closed:
                return
            self.replaced += 1
            self._growing += 1  # its replacement counts toward the limit while it starts
        dead.stop()
        self._idle.put(self._grow())

    def invoke(self, request: Request) -> tuple[bool, Any]:
        """Run one invocation, (handler, event, function name, timeout, environment, memory MB, fault), in an idle
        process; raises EnvironmentExited if its process dies meanwhile, InvocationTimedOut or InvocationOutOfMemory
        if it was killed for its limits."""
        while True:
            process = self._take()
            if process.process.is_alive():
                break
            self._replace(process)  # died while idle: nothing was lost, start a new one and use it instead
        try:
            answer = process.call(request)
        except (EnvironmentExited, InvocationTimedOut, InvocationOutOfMemory):
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
