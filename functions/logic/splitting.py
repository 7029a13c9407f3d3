"""The splitter: stream an uploaded CSV and cut it into work messages, as they are produced."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, Protocol

from functions.errors import InputError, InsufficientCreditsError
from functions.logic import csv_input
from functions.logic.jobs import FinalizerPort, JobStorePort, check_type, utcnow
from functions.models import Batch, Job, JobStatus
from functions.observability import logger


class SplitStorePort(JobStorePort, Protocol):
    """The jobs-table operations the splitter needs."""

    def claim_split(self, job_id: str, now: str, lease_expired_before: str) -> Job | None: ...
    def finish_split(
        self, job_id: str, total_rows: int, total_batches: int, header: list[str], max_width: int
    ) -> Job | None: ...
    def account_credits(self, account_id: str) -> int | None: ...
    def put_new_job(self, job: Job) -> bool: ...
    def reserve_for_job(self, job: Job, rows: int, now: str) -> None: ...
    def record_layout(self, job_id: str, header: list[str], column: str, delimiter: str, encoding: str) -> None: ...


class SplitBlobPort(Protocol):
    """The bucket operations the splitter needs."""

    def stream(self, key: str) -> Iterator[bytes]: ...
    def put(
        self, key: str, body: bytes, *, content_type: str = "text/csv", metadata: dict[str, str] | None = None
    ) -> None: ...
    def copy(self, source_key: str, dest_key: str) -> None: ...
    def delete(self, key: str) -> None: ...


class QueuePort(Protocol):
    """Sends work messages."""

    def send(self, bodies: list[str]) -> None: ...


@dataclass(frozen=True)
class SplitLimits:
    """How a file is cut: rows per message, a target size per message, the queue's hard limit, rows per job."""

    rows_per_batch: int
    # Where a batch is cut, estimated from the rows' text (cheap); the exact JSON is then held to max_message_bytes.
    max_batch_bytes: int
    max_rows: int
    lease_seconds: int
    # The largest message the work queue accepts, in UTF-8 bytes (adapters/messaging.py MAX_MESSAGE_BYTES).
    max_message_bytes: int


class WorkMessage(NamedTuple):
    """One batch and its message body (the JSON the worker reads)."""

    batch: Batch
    body: str


@dataclass(frozen=True)
class DropTarget:
    """A CSV dropped at drop/<account_id>/<type>/<name>.csv."""

    account_id: str
    job_type: str
    filename: str


def parse_drop_key(key: str) -> DropTarget | None:
    """The account, type and file name of a drop key, or None when the key does not have that shape."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != "drop" or not parts[3]:
        return None
    return DropTarget(parts[1], parts[2], parts[3])


def drop_job_id(key: str, etag: str, sequencer: str) -> str:
    """A job id derived from the object version, so a duplicate S3 event maps to the same job."""
    digest = hashlib.sha256(f"{key}\n{etag}\n{sequencer}".encode()).hexdigest()
    return "job_d" + digest[:19]


def _with_head(chunks: Iterator[bytes]) -> tuple[bytes, Iterator[bytes]]:
    """Read the first SNIFF_BYTES for sniffing and give back a stream that still starts at byte 0."""
    head = bytearray()
    consumed: list[bytes] = []
    for chunk in chunks:
        consumed.append(chunk)
        head += chunk
        if len(head) >= csv_input.SNIFF_BYTES:
            break
    return bytes(head[: csv_input.SNIFF_BYTES]), itertools.chain(consumed, chunks)


def batches(
    rows: Iterable[list[str]], job_id: str, layout: csv_input.CsvLayout, limits: SplitLimits
) -> Iterator[WorkMessage]:
    """Cut rows into batches by row count and size, each message within the queue's limit; raises too_many_rows
    past the job limit and row_too_large for a row that no message can hold."""
    current: list[list[str]] = []
    size = 0
    number = 0
    first = 0
    index = 0
    for row in rows:
        if index >= limits.max_rows:
            raise InputError(f"the file has more than {limits.max_rows} data rows", code="too_many_rows")
        row_size = sum(len(c) for c in row) + 4 * len(row) + 4
        if current and (len(current) >= limits.rows_per_batch or size + row_size > limits.max_batch_bytes):
            for message in _fitted(job_id, number, first, current, layout, limits.max_message_bytes):
                yield message
                number += 1
            first = index
            current, size = [], 0
        current.append(row)
        size += row_size
        index += 1
    if current:
        yield from _fitted(job_id, number, first, current, layout, limits.max_message_bytes)


def _fitted(
    job_id: str, number: int, first: int, rows: list[list[str]], layout: csv_input.CsvLayout, max_bytes: int
) -> list[WorkMessage]:
    """The rows as one message, or halved until each half fits: the size estimate counts characters, while SQS
    counts UTF-8 bytes of the JSON (a CJK character is 3 bytes, an emoji 4, a control character 6)."""
    batch = Batch(
        job_id=job_id, batch=number, first_row=first, column_index=layout.column_index, header=layout.header, rows=rows
    )
    body = batch.model_dump_json()
    if len(body.encode("utf-8")) <= max_bytes:
        return [WorkMessage(batch, body)]
    if len(rows) == 1:
        raise InputError(
            f"data row {first + 1} is too large for a work message ({max_bytes} bytes as JSON, with the header)",
            code="row_too_large",
            max_row_chars=csv_input.MAX_ROW_CHARS,
        )
    half = len(rows) // 2
    left = _fitted(job_id, number, first, rows[:half], layout, max_bytes)
    return left + _fitted(job_id, number + len(left), first + half, rows[half:], layout, max_bytes)


def split_job(
    job: Job,
    *,
    store: SplitStorePort,
    blobs: SplitBlobPort,
    queue: QueuePort,
    finalizer: FinalizerPort,
    limits: SplitLimits,
) -> Job | None:
    """Split a job's file into work messages. Safe to run twice: only one run claims the split.

    Batch numbers depend only on the file, so a split that is taken over after a crash re-sends the same
    batches, which the workers count once.
    """
    now = datetime.now(UTC)
    expired = (now - timedelta(seconds=limits.lease_seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    claimed = store.claim_split(job.id, utcnow(), expired)
    if claimed is None:
        logger.info("split skipped: already claimed or job ended", job_id=job.id)
        return None
    try:
        head, chunks = _with_head(blobs.stream(job.source_key))
        layout = csv_input.sniff(head, job.type, job.column)
        store.record_layout(job.id, list(layout.header), layout.column, layout.delimiter, layout.encoding)
        if job.total_rows is None:
            # A dropped file was not checked by the API: validate it whole before any work is queued.
            _check_drop(job, layout, blobs, store, limits)
        total_rows = 0
        total_batches = 0
        max_width = len(layout.header)
        pending: list[str] = []
        flush_at = 1
        for batch, body in batches(csv_input.iter_rows(chunks, layout), job.id, layout, limits):
            pending.append(body)
            total_rows += len(batch.rows)
            total_batches += 1
            max_width = max(max_width, *(len(r) for r in batch.rows))
            # Sent as produced: the first batch alone (workers start at once), then in doubling groups up to
            # SendMessageBatch's ten (the queue adapter cuts a group further to stay within 1 MiB a call), so few
            # requests carry many rows and the queue never holds the whole file.
            if len(pending) >= flush_at:
                queue.send(pending)
                pending = []
                flush_at = min(10, flush_at * 2)
        if pending:
            queue.send(pending)
        if total_rows == 0:
            raise InputError("the file has no data rows", code="no_rows")
    except InputError as exc:
        logger.info("job failed at split", job_id=job.id, error=exc.code)
        failed = store.set_status(
            job.id, JobStatus.FAILED, only_from=("processing",), now=utcnow(), error=exc.code, error_message=exc.message
        )
        if failed is not None:
            finalizer.start(job.id)
        return failed
    finished = store.finish_split(job.id, total_rows, total_batches, list(layout.header), max_width)
    logger.info("job split", job_id=job.id, rows=total_rows, batches=total_batches, column=layout.column)
    if finished is not None and finished.batches_done >= total_batches:
        finalizer.start(job.id)
    return finished


def _check_drop(
    job: Job, layout: csv_input.CsvLayout, blobs: SplitBlobPort, store: SplitStorePort, limits: SplitLimits
) -> None:
    rows = 0
    for _ in csv_input.iter_rows(blobs.stream(job.source_key), layout):
        rows += 1
        if rows > limits.max_rows:
            raise InputError(
                f"the file has more than {limits.max_rows} data rows", code="too_many_rows", max_rows=limits.max_rows
            )
    if rows == 0:
        raise InputError("the file has no data rows", code="no_rows")
    try:
        store.reserve_for_job(job, rows, utcnow())
    except InsufficientCreditsError as exc:
        raise InputError(exc.message, code="insufficient_credits", **exc.details) from exc


def reject_drop(blobs: SplitBlobPort, key: str, code: str, message: str) -> str:
    """Move a dropped file that cannot become a job to rejected/, with a reason file beside it."""
    dest = "rejected/" + key.removeprefix("drop/")
    blobs.copy(key, dest)
    blobs.put(
        dest + ".reason.json",
        json.dumps({"error": code, "message": message, "source_key": key}).encode(),
        content_type="application/json",
    )
    blobs.delete(key)
    return dest


def job_for_drop(
    key: str, etag: str, sequencer: str, store: SplitStorePort, blobs: SplitBlobPort, column: str | None = None
) -> Job | None:
    """The job for a dropped file (created on first sight); None when the drop was rejected.

    `column` comes from the object's `x-amz-meta-column` metadata, the drop's way of saying which column to use.
    """
    target = parse_drop_key(key)
    if target is None:
        reject_drop(blobs, key, "invalid_drop_key", "drop files go to drop/<account_id>/<type>/<name>.csv")
        return None
    try:
        job_type = check_type(target.job_type)
    except InputError as exc:
        reject_drop(blobs, key, exc.code, exc.message)
        return None
    if store.account_credits(target.account_id) is None:
        reject_drop(blobs, key, "unknown_account", f"no account {target.account_id}")
        return None
    job_id = drop_job_id(key, etag, sequencer)
    job = Job(
        id=job_id,
        account_id=target.account_id,
        type=job_type,
        status=JobStatus.QUEUED,
        source_key=key,
        filename=target.filename,
        column=column or None,
        created_at=utcnow(),
    )
    if not store.put_new_job(job):
        existing = store.get_job(job_id)
        return existing
    return job
