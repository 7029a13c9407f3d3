"""Shared test helpers: polling with a deadline, CSV builders, mypy one run at a time."""

from __future__ import annotations

import csv
import fcntl
import io
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]


def mypy(*args: str) -> subprocess.CompletedProcess[str]:
    """mypy in the project's root, one run at a time: two at once (parallel workers on a fresh clone) would each fill
    the cold cache, a minute or more of a core each (83 s measured); the second finds it warm instead."""
    cache = ROOT / ".mypy_cache"
    cache.mkdir(exist_ok=True)
    with (cache / "bulkapi-tests.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return subprocess.run(
            [str(Path(sys.executable).parent / "mypy"), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )


def wait_for(probe: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.1, what: str = "") -> T:
    """Call `probe` until it returns something truthy; fail with `what` when the deadline passes."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}; last value: {last!r}")


def email_csv(rows: int, *, header: bool = True, bad_every: int = 0) -> bytes:
    """A CSV of `rows` leads with an Email column; every `bad_every`-th address is invalid."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    if header:
        writer.writerow(["Name", "Email", "Row"])
    for i in range(rows):
        email = f"not-an-email-{i}" if bad_every and i % bad_every == bad_every - 1 else f"user{i}@example{i % 97}.com"
        writer.writerow([f"Person {i}", email, str(i)])
    return buf.getvalue().encode()


def parse_result(data: bytes) -> list[dict[str, str]]:
    """The result CSV (UTF-8 with BOM) as dicts."""
    assert data.startswith(b"\xef\xbb\xbf"), "result must start with a UTF-8 BOM"
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
