"""Shared test helpers: polling with a deadline, CSV builders."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


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
