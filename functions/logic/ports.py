"""Every port logic/ takes: what a logic function needs from a store, the bucket, a queue or a provider.

One file, so an adapter's author finds every contract it fills in one place, and `mypy --strict` checks each
adapter against the port its handler's `Deps` field names (function_ports.py joins them per function).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from functions.models import Attempt, BatchCounts, Job, JobStatus, StoredLayout

# --- jobs -------------------------------------------------------------------------------------------------------------


class StatusPort(Protocol):
    """Reads a job and moves its status (guarded by the statuses it may move from)."""

    def get_job(self, job_id: str) -> Job | None: ...
    def set_status(
        self,
        job_id: str,
        status: JobStatus,
        *,
        only_from: tuple[str, ...],
        now: str,
        error: str | None = None,
        error_message: str | None = None,
    ) -> Job | None: ...


class JobStorePort(StatusPort, Protocol):
    """What job logic needs from the jobs table."""

    def put_new_job(self, job: Job) -> bool: ...


class BalancePort(Protocol):
    """Reads an account's balance (None: there is no such account)."""

    def account_credits(self, account_id: str) -> int | None: ...


class LedgerPort(BalancePort, Protocol):
    """Reads an account's balance and a page of its ledger (the credit store)."""

    def ledger_page(
        self, account_id: str, limit: int = 50, after: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]: ...


class ReservingPort(Protocol):
    """Stores a new job together with the reservation of its rows' credits, in one write (the credit store)."""

    def create_job_reserving(self, job: Job, now: str, request_id: str | None = None) -> None: ...


class BlobPort(Protocol):
    """What job creation needs from the bucket."""

    def put(
        self, key: str, body: bytes, *, content_type: str = "text/csv", metadata: dict[str, str] | None = None
    ) -> None: ...


class PresignPort(Protocol):
    """Signs a browser-style POST upload of one key."""

    def presigned_post(self, key: str, *, max_bytes: int, expires_in: int) -> tuple[str, dict[str, str]]: ...


class FinalizerPort(Protocol):
    """Starts the finalizer of a job (idempotent)."""

    def start(self, job_id: str) -> bool: ...


# --- accounts ---------------------------------------------------------------------------------------------------------


class AccountStorePort(Protocol):
    """Account and key storage (the account store)."""

    def create_account(self, account_id: str, name: str, credits: int, now: str) -> bool: ...
    def put_api_key(self, api_key: str, account_id: str, key_id: str, now: str) -> None: ...
    def revoke_api_key(self, key_id: str, now: str) -> str | None: ...
    def list_accounts(self) -> list[dict[str, Any]]: ...
    def list_keys(self, account_id: str) -> list[dict[str, Any]]: ...


class GrantPort(BalancePort, Protocol):
    """Grants credits to an account (the credit store); an account exists when it has a balance."""

    def grant_credits(self, account_id: str, credits: int, now: str, request_id: str | None = None) -> None: ...


# --- splitting --------------------------------------------------------------------------------------------------------


class SplitStorePort(JobStorePort, Protocol):
    """The jobs-table operations the splitter needs."""

    def claim_split(
        self, job_id: str, now: str, lease_expired_before: str, *, source_key: str | None = None
    ) -> Job | None: ...
    def finish_split(
        self, job_id: str, total_rows: int, total_batches: int, header: list[str], max_width: int
    ) -> Job | None: ...
    def record_layout(self, job_id: str, header: list[str], column: str, layout: StoredLayout) -> None: ...
    def record_split_progress(self, job_id: str, bytes_read: int, bytes_total: int | None) -> None: ...


class SplitCreditPort(BalancePort, Protocol):
    """The credit operations the splitter needs: a dropped file's account must exist, a counted file is reserved."""

    def reserve_for_job(self, job: Job, rows: int, now: str) -> None: ...


class OpenedObject(Protocol):
    """An object being read: its size and version (ETag), and its bytes in chunks."""

    size: int | None
    etag: str | None

    def __iter__(self) -> Iterator[bytes]: ...


class SplitBlobPort(Protocol):
    """The bucket operations the splitter needs (`head`: a drop's metadata, which may name its column)."""

    def head(self, key: str) -> dict[str, Any] | None: ...
    def open(self, key: str, if_match: str | None = None) -> OpenedObject: ...
    def read_range(self, key: str, start: int, length: int, if_match: str | None = None) -> bytes: ...
    def put(
        self, key: str, body: bytes, *, content_type: str = "text/csv", metadata: dict[str, str] | None = None
    ) -> None: ...
    def copy(self, source_key: str, dest_key: str) -> None: ...
    def delete(self, key: str) -> None: ...


class QueuePort(Protocol):
    """Sends work messages."""

    def send(self, bodies: list[str]) -> None: ...


# --- fetching ---------------------------------------------------------------------------------------------------------


class FetchPort(Protocol):
    """Streams the file at a URL into the bucket; raises FetchError (fetch_blocked, fetch_too_large, fetch_failed)."""

    def fetch(self, url: str, key: str, *, max_bytes: int) -> int: ...


class FetchRequestPort(Protocol):
    """Queues the fetch of a job's file (after `delay_seconds`)."""

    def request_fetch(self, job_id: str, delay_seconds: int = 0) -> None: ...


class FetchSlotsPort(Protocol):
    """An account's share of the fetcher's concurrent fetches."""

    def acquire(self, account_id: str, job_id: str) -> bool: ...
    def release(self, account_id: str, job_id: str) -> None: ...


class FetchStorePort(StatusPort, Protocol):
    """What a fetch records on its job."""

    def start_fetch(self, job_id: str, now: str, running_since: str) -> Job | None: ...
    def finish_fetch(self, job_id: str, now: str) -> None: ...


# --- processing -------------------------------------------------------------------------------------------------------


class WorkStorePort(Protocol):
    """The jobs-table operations a worker needs."""

    def get_job(self, job_id: str) -> Job | None: ...
    def commit_batch(self, job_id: str, batch: int, counts: BatchCounts) -> int | None: ...
    def touch_progress(self, job_id: str) -> None: ...


class RequeuePort(Protocol):
    """Sends a batch back to the work queue."""

    def send(self, bodies: Sequence[str]) -> None: ...


class PartBlobPort(Protocol):
    """Writes part files."""

    def put(
        self, key: str, body: bytes, *, content_type: str = "text/csv", metadata: dict[str, str] | None = None
    ) -> None: ...
    def put_new(self, key: str, body: bytes, *, content_type: str = "text/csv") -> bool: ...


# --- finalize ---------------------------------------------------------------------------------------------------------


class FinalStorePort(StatusPort, Protocol):
    """The jobs-table operations the finalizer needs."""

    def record_result(
        self, job_id: str, result_key: str, result_rows: int, now: str, summary: dict[str, dict[str, int]]
    ) -> Job: ...


class SettlePort(Protocol):
    """Refunds a job's unused credits, once (the credit store)."""

    def settle_credits(self, job: Job, now: str) -> bool: ...


class Writer(Protocol):
    """A streaming object writer."""

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


class AppendingWriter(Writer, Protocol):
    """A streaming object writer that can also append whole objects of the bucket (copied by S3 where they are large
    enough to be parts of their own)."""

    def append_objects(
        self, keys: Iterable[str], observe: Callable[[str, bytes | None], None] | None = None
    ) -> None: ...


class FinalBlobPort(Protocol):
    """The bucket operations the finalizer needs."""

    bucket: str

    def head(self, key: str) -> dict[str, Any] | None: ...
    def stream(self, key: str) -> Iterator[bytes]: ...
    def writer(self, key: str, content_type: str = "text/csv") -> AppendingWriter: ...
    def purge(self, prefix: str, *, exact: bool = False) -> int: ...


class EventPort(Protocol):
    """Publishes events."""

    def put(self, detail_type: str, detail: dict[str, Any]) -> None: ...


# --- variants ---------------------------------------------------------------------------------------------------------


class VariantBuildStorePort(Protocol):
    """The jobs-table operations a build needs."""

    def get_job(self, job_id: str) -> Job | None: ...
    def get_variant(self, job_id: str, name: str) -> dict[str, Any] | None: ...
    def record_variant(self, job_id: str, name: str, *, key: str, rows: int, size: int, now: str) -> bool: ...


class VariantBlobPort(Protocol):
    """The bucket operations a build needs."""

    def head(self, key: str) -> dict[str, Any] | None: ...
    def stream(self, key: str) -> Iterator[bytes]: ...
    def writer(self, key: str, content_type: str = "text/csv") -> Writer: ...
    def purge(self, prefix: str, *, exact: bool = False) -> int: ...


# --- downloads --------------------------------------------------------------------------------------------------------


class DownloadBlobPort(Protocol):
    """The bucket operations a download needs."""

    def head(self, key: str) -> dict[str, Any] | None: ...
    def get_if_exists(self, key: str) -> bytes | None: ...
    def get_if_small(self, key: str, max_bytes: int) -> tuple[int, bytes | None] | None: ...
    def presigned_get(self, key: str, expires: int, disposition: str) -> str: ...
    def purge(self, prefix: str, *, exact: bool = False) -> int: ...


class VariantRequestPort(Protocol):
    """The jobs-table operations a variant download needs."""

    def get_variant(self, job_id: str, name: str) -> dict[str, Any] | None: ...
    def request_variant(self, job_id: str, name: str, now: str, stale_before: str) -> bool: ...


class BuildQueuePort(Protocol):
    """Where variant builds are asked for."""

    def send(self, bodies: list[str]) -> None: ...


# --- purge ------------------------------------------------------------------------------------------------------------


class PurgeStorePort(StatusPort, Protocol):
    """The jobs-table operations a purge needs."""

    def begin_purge(self, job_id: str, now: str) -> Job | None: ...
    def delete_job(self, job_id: str) -> None: ...


class PurgeBlobPort(Protocol):
    """Deletes objects with all their versions."""

    def purge(self, prefix: str, *, exact: bool = False) -> int: ...


# --- sweeper ----------------------------------------------------------------------------------------------------------


class SweepStorePort(StatusPort, Protocol):
    """What the sweeper needs from the jobs table."""

    def active_job_ids(self, created_before: str, limit: int = 500) -> list[str]: ...


class UploadedFilesPort(Protocol):
    """Whether a job's file is in the bucket: its metadata (`LastModified`), or None when it is absent."""

    def head(self, key: str) -> dict[str, Any] | None: ...


# --- inline -----------------------------------------------------------------------------------------------------------


class InlineCreditPort(Protocol):
    """The credit store's inline money: a reservation before the stream, its settlement after."""

    def reserve_inline(self, account_id: str, request_id: str, credits: int, now: str) -> None:
        """Take `credits` with a ledger entry, or raise InsufficientCreditsError."""
        ...

    def settle_inline(self, account_id: str, request_id: str, reserved: int, used: int, now: str) -> int:
        """Refund `reserved - used` once; returns the refund."""
        ...


# --- webhooks ---------------------------------------------------------------------------------------------------------


class SenderPort(Protocol):
    """Delivers one signed POST to a webhook URL (never raises for what the receiver does)."""

    def send(self, url: str, msg_id: str, payload: str, secret: str) -> Attempt: ...


class WebhookStorePort(Protocol):
    """What delivery needs from storage."""

    def active_endpoints(self, account_id: str, event_type: str) -> list[dict[str, Any]]: ...
    def get_endpoint(self, account_id: str, endpoint_id: str) -> dict[str, Any] | None: ...
    def start_delivery(self, delivery: dict[str, Any]) -> bool: ...
    def get_delivery(self, delivery: dict[str, Any]) -> dict[str, Any] | None: ...
    def mark_queued(self, delivery: dict[str, Any]) -> None: ...
    def record_attempt(self, delivery: dict[str, Any], attempt: Attempt, status: str, now: str) -> None: ...
    def disable_endpoint(self, account_id: str, endpoint_id: str, now: str) -> None: ...


class RetryPort(Protocol):
    """Schedules a delivery's next attempt."""

    def schedule(self, delivery: dict[str, Any], delay_seconds: int) -> None: ...


# --- endpoints --------------------------------------------------------------------------------------------------------


class TargetPort(Protocol):
    """Webhook URLs: whether one may be used (resolving its name once), and a signed send to it."""

    def check(self, url: str) -> str:
        """The URL as it will be requested (non-ASCII encoded); raise InvalidTargetError when it may not receive
        webhooks."""
        ...

    def send(self, url: str, msg_id: str, payload: str, secret: str) -> Attempt:
        """One signed POST."""
        ...


class EndpointStorePort(Protocol):
    """Endpoint storage."""

    def put_endpoint(self, account_id: str, endpoint: dict[str, Any]) -> None: ...
    def get_endpoint(self, account_id: str, endpoint_id: str) -> dict[str, Any] | None: ...
    def list_endpoints(self, account_id: str) -> list[dict[str, Any]]: ...
    def delete_endpoint(self, account_id: str, endpoint_id: str) -> None: ...
    def deliveries(self, endpoint_id: str, limit: int = 50) -> list[dict[str, Any]]: ...
    def start_delivery(self, delivery: dict[str, Any]) -> bool: ...
    def record_attempt(self, delivery: dict[str, Any], attempt: Attempt, status: str, now: str) -> None: ...
