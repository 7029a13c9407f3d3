"""Function processes behave like Lambda execution environments when one dies."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from local.processes import (
    EnvironmentExited,
    FunctionProcesses,
    InvocationOutOfMemory,
    InvocationTimedOut,
    Request,
)


def nothing() -> None:
    """No warm-up."""


def run(
    handler: str,
    event: dict[str, Any],
    name: str,
    timeout: float,
    env: dict[str, str],
    memory_mb: int,
    fault: str | None,
) -> tuple[bool, Any]:
    """Answers with this process's pid after `sleep` seconds, having first written `allocate_mb` MiB."""
    held = bytearray(b"\x01") * (int(event.get("allocate_mb", 0)) << 20)
    time.sleep(float(event.get("sleep", 0)))
    return True, (os.getpid(), len(held))


def request(event: dict[str, Any], timeout: float = 60, memory_mb: int = 1024) -> Request:
    """An invocation of a test function with this timeout and memory size."""
    return ("h", event, "fn", timeout, {}, memory_mb, None)


def test_a_process_killed_mid_invocation_fails_only_that_invocation_and_is_replaced() -> None:
    # Given two function processes, one of them busy with a long invocation
    processes = FunctionProcesses(2, nothing, run)
    try:
        outcome: dict[str, Any] = {}

        def long_call() -> None:
            try:
                processes.invoke(request({"sleep": 30}))
            except EnvironmentExited as exc:
                outcome["error"] = exc

        caller = threading.Thread(target=long_call)
        caller.start()
        time.sleep(0.5)
        busy = set(processes.pids)
        # When the busy one is killed (which one is busy: the one that does not answer a short call)
        idle_pid = processes.invoke(request({}))[1][0]
        os.kill(next(pid for pid in busy if pid != idle_pid), signal.SIGKILL)
        caller.join(timeout=10)

        # Then only that invocation fails, with the Lambda-like reason
        assert "signal 9" in str(outcome["error"])
        # And a new process takes its place; both answer again
        deadline = time.monotonic() + 60
        while processes.replaced < 1 or len(processes.pids) < 2:
            assert time.monotonic() < deadline, "no replacement process"
            time.sleep(0.05)
        answers = {processes.invoke(request({"sleep": 0.3}))[1][0] for _ in range(4)}
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
        ok, (pid, _) = processes.invoke(request({}))

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


def test_an_invocation_past_its_timeout_is_killed_and_its_process_replaced() -> None:
    # Given one function process and a function with a 1-second timeout
    processes = FunctionProcesses(1, nothing, run)
    try:
        first = processes.pids[0]
        started = time.monotonic()

        # When an invocation sleeps for 30 seconds
        with pytest.raises(InvocationTimedOut, match=r"Task timed out after 1\.00 seconds"):
            processes.invoke(request({"sleep": 30}, timeout=1))

        # Then it ends at its timeout, not when it would have answered, and its process is gone
        assert time.monotonic() - started < 5
        deadline = time.monotonic() + 10
        while not gone(first):
            assert time.monotonic() < deadline, "the timed-out process still runs"
            time.sleep(0.05)
        # And the next invocation runs in a new process, within its time
        ok, (pid, _) = processes.invoke(request({"sleep": 0.1}, timeout=1))
        assert ok and pid != first
    finally:
        processes.close()


def test_an_invocation_past_its_memory_size_is_killed() -> None:
    # Given one function process; its resident memory with nothing allocated (a spawned interpreter)
    processes = FunctionProcesses(1, nothing, run)
    try:
        ok, (pid, _) = processes.invoke(request({}))
        base_mb = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
        memory_mb = base_mb + 64

        # When an invocation writes 200 MiB more than that, within a memory size of base + 64 MiB
        with pytest.raises(InvocationOutOfMemory):
            processes.invoke(request({"allocate_mb": 264, "sleep": 5}, memory_mb=memory_mb))
        # Then it was killed, and an invocation that stays within the size still succeeds, in a new process
        ok, (new_pid, held) = processes.invoke(request({"allocate_mb": 16}, memory_mb=memory_mb))
        assert ok and held == 16 << 20 and new_pid != pid
    finally:
        processes.close()


def test_a_growing_pool_starts_a_process_while_all_are_busy_up_to_its_limit() -> None:
    # Given a pool of one process that may grow to two (the api's, as Lambda scales out)
    processes = FunctionProcesses(1, nothing, run, limit=2)
    try:
        # When three invocations of 3 s come at once
        answers: list[int] = []
        callers = [
            threading.Thread(target=lambda: answers.append(processes.invoke(request({"sleep": 3}))[1][0]))
            for _ in range(3)
        ]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(timeout=60)

        # Then all three were answered, by two processes: a second one started, the third waited for one of them
        assert len(answers) == 3
        assert len(set(answers)) == 2 and len(processes.pids) == 2
    finally:
        processes.close()
