"""Function processes behave like Lambda execution environments when one dies."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from local.processes import EnvironmentExited, FunctionProcesses


def nothing() -> None:
    """No warm-up."""


def run(handler: str, event: dict[str, Any], name: str, timeout: int, env: dict[str, str]) -> tuple[bool, Any]:
    """Answers with this process's pid after `sleep` seconds."""
    time.sleep(float(event.get("sleep", 0)))
    return True, os.getpid()


def test_a_process_killed_mid_invocation_fails_only_that_invocation_and_is_replaced() -> None:
    # Given two function processes, one of them busy with a long invocation
    processes = FunctionProcesses(2, nothing, run)
    try:
        outcome: dict[str, Any] = {}

        def long_call() -> None:
            try:
                processes.invoke("h", {"sleep": 30}, "fn", 60, {})
            except EnvironmentExited as exc:
                outcome["error"] = exc

        caller = threading.Thread(target=long_call)
        caller.start()
        time.sleep(0.5)
        busy = set(processes.pids)
        # When the busy one is killed (which one is busy: the one that does not answer a short call)
        idle_pid = processes.invoke("h", {}, "fn", 60, {})[1]
        os.kill(next(pid for pid in busy if pid != idle_pid), signal.SIGKILL)
        caller.join(timeout=10)

        # Then only that invocation fails, with the Lambda-like reason
        assert "signal 9" in str(outcome["error"])
        # And a new process takes its place; both answer again
        deadline = time.monotonic() + 60
        while processes.replaced < 1 or len(processes.pids) < 2:
            assert time.monotonic() < deadline, "no replacement process"
            time.sleep(0.05)
        answers = {processes.invoke("h", {"sleep": 0.3}, "fn", 60, {})[1] for _ in range(4)}
        assert answers <= set(processes.pids)
    finally:
        processes.close()


def test_a_process_that_died_while_idle_is_replaced_without_failing_anything() -> None:
    # Given one function process that dies between invocations
    processes = FunctionProcesses(1, nothing, run)
    try:
        first = processes.pids[0]
        os.kill(first, signal.SIGKILL)
        time.sleep(0.2)

        # When the next invocation comes
        ok, pid = processes.invoke("h", {}, "fn", 60, {})

        # Then it runs in a new process, as if nothing happened
        assert ok and pid != first
    finally:
        processes.close()


def gone(pid: int) -> bool:
    """Exited (a zombie only waits to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_close_ends_every_process() -> None:
    # Given two function processes
    processes = FunctionProcesses(2, nothing, run)
    pids = processes.pids

    # When the runtime closes them
    processes.close()

    # Then both end
    deadline = time.monotonic() + 10
    while not all(gone(pid) for pid in pids):
        assert time.monotonic() < deadline, "a function process outlived close()"
        time.sleep(0.05)
