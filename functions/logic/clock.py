"""The clock and the job ids: every timestamp the service writes, and the id of a job created through the API."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """ISO-8601 UTC timestamp with milliseconds, sortable as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utcnow() -> str:
    """Now, as `iso` writes it."""
    return iso(datetime.now(UTC))


def new_job_id() -> str:
    """`job_` + 20 random base32 characters (100 bits): unguessable, URL-safe."""
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "job_" + "".join(secrets.choice(alphabet) for _ in range(20))
