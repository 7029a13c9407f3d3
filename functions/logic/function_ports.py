"""What each function's `Deps` carries where one adapter fills several ports: the union of the ports (ports.py) its
logic calls take, plus the records only a handler uses (idempotency, key owners). mypy --strict checks every adapter
the composition root builds against these."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from functions.logic.ports import (
    BlobPort,
    DownloadBlobPort,
    JobStorePort,
    LedgerPort,
    PresignPort,
    PurgeBlobPort,
    PurgeStorePort,
    ReservingPort,
    RetryPort,
    SplitBlobPort,
    VariantRequestPort,
)
from functions.models import Job


class ApiJobStorePort(JobStorePort, PurgeStorePort, VariantRequestPort, Protocol):
    """The jobs table as the REST API uses it: jobs, their purge and variants, and the account's job list."""

    def list_jobs(
        self, account_id: str, *, limit: int, cursor: dict[str, Any] | None, status: str | None
    ) -> tuple[list[Job], dict[str, Any] | None]: ...
    def variants(self, job_id: str) -> list[dict[str, Any]]: ...


class ApiCreditPort(ReservingPort, LedgerPort, Protocol):
    """The credit store as the REST API uses it: reservations, the balance and the ledger."""


class ApiBlobPort(BlobPort, PresignPort, DownloadBlobPort, PurgeBlobPort, Protocol):
    """The bucket as the REST API uses it: uploads, presigned forms and links, and purges."""


class SplitterBlobPort(SplitBlobPort, PurgeBlobPort, Protocol):
    """The bucket as the splitter uses it: reading and rejecting files, and deleting an upload whose job is gone."""


class JobReplayPort(Protocol):
    """Runs a job-creating request once per (account, Idempotency-Key) and replays its answer."""

    def once(
        self,
        account_id: str,
        key: str,
        request_fingerprint: str,
        action: Callable[[], dict[str, Any]],
        lambda_context: Any,
    ) -> dict[str, Any]: ...


class InlineReplayPort(Protocol):
    """Records a streamed inline answer per (account, Idempotency-Key), to replay it to a retry."""

    def begin(self, account_id: str, key: str, request_fingerprint: str) -> bytes | None: ...
    def finish(self, account_id: str, key: str, transcript: bytes) -> None: ...
    def abandon(self, account_id: str, key: str) -> None: ...


class KeyOwnerPort(Protocol):
    """The account an API key belongs to (None: unknown or revoked)."""

    def account_for_key(self, api_key: str) -> str | None: ...


class RetryQueuePort(RetryPort, Protocol):
    """The webhook retry queue: schedules attempts and sends a not-yet-due message back for another hop."""

    def requeue(self, body: dict[str, Any], remaining: float) -> None: ...
