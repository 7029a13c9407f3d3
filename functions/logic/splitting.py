"""The splitter: stream a job's CSV and cut it into work messages, as they are produced."""

from __future__ import annotations

import io
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from functions.errors import InputError, InsufficientCreditsError
from functions.logic import csv_input, input_formats, intake
from functions.logic.clock import utcnow
from functions.logic.duplicates import FirstSeen, JobValues
from functions.logic.jobs import check_country_column
from functions.logic.ports import (
    FinalizerPort,
    OpenedObject,
    QueuePort,
    SplitBlobPort,
    SplitCreditPort,
    SplitStorePort,
)
from functions.models import Batch, Job, JobStatus, StoredLayout
from functions.observability import logger

# A job is cut into at most this many batches by row count: a larger job gets larger batches (1,000,000 rows: 2,000 a
# batch), however small `rows_per_batch` is set. What a batch costs is fixed (a message, a part file, reads and writes
# of the job item, its marker there), and 500 batches keep far more work in flight than the workers can take (10
# workers x 4 messages). Byte cuts for wide rows add batches only for files over 100 MB (at most 1 GiB / ~200 KB, 5,400
# more), so the markers on the job item (about 4 bytes each) stay under 25 KB, far inside DynamoDB's 400 KB item limit.
MAX_ROW_BATCHES = 500


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
    # How often the split records how far it has read (split_bytes_read), so progress shows from the first second.
    progress_seconds: float = 1.0
    # The deployment's region for phone numbers without `+` (duplicates of phones are found on their E.164 form).
    phone_region: str = "US"
    # The largest content a file may have once uncompressed (a gzip's, a ZIP's or a workbook's).
    max_file_bytes: int = 1024**3

    def for_rows(self, total_rows: int) -> SplitLimits:
        """These limits for a file of `total_rows`: batches grow so that there are at most MAX_ROW_BATCHES."""
        rows = max(self.rows_per_batch, -(-total_rows // MAX_ROW_BATCHES))
        return replace(self, rows_per_batch=rows)


class WorkMessage(NamedTuple):
    """One batch and its message body (the JSON the worker reads)."""

    batch: Batch
    body: str


def batches(
    rows: Iterable[list[str]],
    job_id: str,
    layout: csv_input.CsvLayout,
    limits: SplitLimits,
    values: JobValues | None = None,
) -> Iterator[WorkMessage]:
    """Cut rows into batches by row count and size, each message within the queue's limit; raises row_too_large
    for a row that no message can hold. (How many rows a file may have is `intake.limited_rows`' rule.)

    With `values`, each row that repeats an earlier row's value is marked in its batch with its first occurrence.
    """
    current: list[list[str]] = []
    repeats: dict[int, FirstSeen] = {}
    size = 0
    number = 0
    first = 0
    index = 0
    for row in rows:
        row_size = sum(len(c) for c in row) + 4 * len(row) + 4
        if current and (len(current) >= limits.rows_per_batch or size + row_size > limits.max_batch_bytes):
            for message in _fitted(job_id, number, first, current, layout, limits.max_message_bytes, repeats):
                yield message
                number += 1
            first = index
            current, size, repeats = [], 0, {}
        seen = values.first_of(index, row) if values is not None else None
        if seen is not None:
            repeats[index] = seen
            row_size += len(seen.value) + 24
        current.append(row)
        size += row_size
        index += 1
    if current:
        yield from _fitted(job_id, number, first, current, layout, limits.max_message_bytes, repeats)


def _fitted(
    job_id: str,
    number: int,
    first: int,
    rows: list[list[str]],
    layout: csv_input.CsvLayout,
    max_bytes: int,
    repeats: dict[int, FirstSeen],
) -> list[WorkMessage]:
    """The rows as one message, or halved until each half fits: the size estimate counts characters, while SQS
    counts UTF-8 bytes of the JSON (a CJK character is 3 bytes, an emoji 4, a control character 6)."""
    # A repeat whose first occurrence is in this very batch is copied by the worker; only others carry the value.
    duplicates = [
        (row, seen.row, seen.value if seen.row < first else None)
        for row, seen in repeats.items()
        if first <= row < first + len(rows)
    ]
    batch = Batch(
        job_id=job_id,
        batch=number,
        first_row=first,
        column_index=layout.column_index,
        header=layout.header,
        rows=rows,
        duplicates=duplicates,
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
    left = _fitted(job_id, number, first, rows[:half], layout, max_bytes, repeats)
    return left + _fitted(job_id, number + len(left), first + half, rows[half:], layout, max_bytes, repeats)


class _Progress:
    """Counts the bytes a pass reads and records them on the job at the first chunk, then every few seconds."""

    def __init__(self, store: SplitStorePort, job_id: str, total: int | None, every: float, enabled: bool) -> None:
        self.store, self.job_id, self.total, self.every = store, job_id, total, every
        self.read = 0
        self._next = 0.0 if enabled else math.inf

    def track(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.add(len(chunk))
            yield chunk

    def add(self, size: int) -> None:
        self.read += size
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.every
            self.store.record_split_progress(self.job_id, self.read, self.total)

    def restart(self) -> None:
        """A second pass over a file read by ranges (an archive) counts from zero again."""
        self.read = 0

    def done(self) -> None:
        self.store.record_split_progress(self.job_id, self.read, self.total)


def _reserve(credits: SplitCreditPort, job: Job, rows: int) -> None:
    try:
        credits.reserve_for_job(job, rows, utcnow())
    except InsufficientCreditsError as exc:
        raise InputError(exc.message, code="insufficient_credits", **exc.details) from exc


def claim(store: SplitStorePort, job_id: str, limits: SplitLimits, source_key: str | None = None) -> Job | None:
    """Take the split of a job (of the job whose file is `source_key`, when given); None when it is not to be split
    (already claimed, ended, or no such job)."""
    now = datetime.now(UTC)
    expired = (now - timedelta(seconds=limits.lease_seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if source_key is None:
        return store.claim_split(job_id, utcnow(), expired)
    return store.claim_split(job_id, utcnow(), expired, source_key=source_key)


def split_job(
    job: Job,
    *,
    store: SplitStorePort,
    credits: SplitCreditPort,
    blobs: SplitBlobPort,
    queue: QueuePort,
    finalizer: FinalizerPort,
    limits: SplitLimits,
    claimed: bool = False,
) -> Job | None:
    """Split a job's file into work messages. Safe to run twice: only one run claims the split (`claimed`: the
    caller did, with `claim`).

    The file is sniffed once (the layout is kept with the job: by the API for a form upload, else here). A file the
    API did not count (a drop, a presigned upload, a fetched URL) is counted first, by the one rule of
    `intake.limited_rows`, and its credits reserved, before any work is queued; the count and the reservation are
    recorded together, so `total_rows` is known from then on. The split then reads the file again and sends its
    batches as they are produced. Batch numbers depend only on the file, so a split that is taken over after a crash
    re-sends the same batches, which the workers count once.
    """
    if not claimed:
        taken = claim(store, job.id, limits)
        if taken is None:
            logger.info("split skipped: already claimed or job ended", job_id=job.id)
            return None
        job = taken
    try:
        opened = blobs.open(job.source_key)
        # A file the API counted shows total_rows from the start: how far the split has read it tells nobody more.
        progress = _Progress(store, job.id, opened.size, limits.progress_seconds, enabled=job.total_rows is None)
        source = _File(job, blobs, opened, progress, limits.max_file_bytes)

        def on_layout(layout: csv_input.CsvLayout, record: StoredLayout) -> None:
            store.record_layout(job.id, list(layout.header), layout.column, record)
            check_country_column(layout, job.country_column)  # before the count reads the whole file

        file = intake.read_csv(
            job,
            source.csv_chunks(first=True),
            # The second read must see the file the count saw (a presigned form can be used twice).
            reopen=lambda: source.csv_chunks(first=False),
            on_layout=on_layout,
            max_rows=limits.max_rows,
        )
        layout, total = file.layout, file.total
        check_country_column(layout, job.country_column)  # a layout the API stored was not checked above
        if file.counted:
            progress.done()
            _reserve(credits, job, total)
        values = JobValues(
            job.type,
            layout.header,
            layout.column_index,
            expected=total,
            country=job.country,
            country_column=job.country_column,
            default_region=limits.phone_region,
        )
        sent = _send(job.id, file.rows, layout, total, queue, limits.for_rows(total), values)
        total_rows, total_batches, max_width = sent
    except InputError as exc:
        logger.info("job failed at split", job_id=job.id, error=exc.code)
        failed = store.set_status(
            job.id, JobStatus.FAILED, only_from=("processing",), now=utcnow(), error=exc.code, error_message=exc.message
        )
        if failed is not None:
            finalizer.start(job.id)
        return failed
    finished = store.finish_split(job.id, total_rows, total_batches, list(layout.header), max_width)
    logger.info(
        "job split",
        job_id=job.id,
        rows=total_rows,
        batches=total_batches,
        column=layout.column,
        distinct=values.seen.distinct,
        duplicates=values.seen.duplicates,
        duplicates_table_bytes=values.seen.nbytes(),
    )
    if finished is not None and finished.batches_done >= total_batches:
        finalizer.start(job.id)
    return finished


class _File:
    """A job's stored file as CSV bytes, whatever its kind (CSV, gzip, ZIP, workbook), read once or twice.

    A CSV or gzip file is read as one stream; a ZIP or workbook by ranges (its directory is at its end), of the
    version first opened (`if_match`), so both passes read the same file.
    """

    def __init__(
        self, job: Job, blobs: SplitBlobPort, opened: OpenedObject, progress: _Progress, max_bytes: int
    ) -> None:
        self.job, self.blobs, self.opened, self.progress, self.max_bytes = job, blobs, opened, progress, max_bytes

    def csv_chunks(self, *, first: bool) -> Iterator[bytes]:
        # Only the first pass is counted in the job's progress (split_bytes_read): it is the one that counts rows.
        raw = self.progress.track(self.opened) if first else self.blobs.open(self.job.source_key, self.opened.etag)
        head, chunks = intake.with_head(iter(raw))
        kind = input_formats.kind_of(head)
        if kind is input_formats.Kind.CSV:
            return chunks
        if kind is input_formats.Kind.ZIP and first:
            self.progress.restart()  # read by ranges from here on, each counted once
        source = input_formats.Source(head, lambda: chunks, lambda: self._ranges(track=first))
        decoded = input_formats.decode(source, max_bytes=self.max_bytes, sheet=self.job.sheet)
        if first:
            logger.info("file decoded", job_id=self.job.id, kind=decoded.kind.value, sheet=decoded.sheet)
        return decoded.chunks

    def _ranges(self, *, track: bool) -> io.BufferedReader:
        size = self.opened.size or 0
        key, etag = self.job.source_key, self.opened.etag

        def read_at(start: int, length: int) -> bytes:
            data = self.blobs.read_range(key, start, length, if_match=etag)
            if track:
                self.progress.add(len(data))
            return data

        return io.BufferedReader(input_formats.RangeFile(size, read_at), buffer_size=input_formats.RANGE_BYTES)


def _send(
    job_id: str,
    rows: Iterable[list[str]],
    layout: csv_input.CsvLayout,
    total: int,
    queue: QueuePort,
    limits: SplitLimits,
    values: JobValues | None = None,
) -> tuple[int, int, int]:
    """Cut the rows into batches and send them as they are produced; (rows, batches, widest row)."""
    total_rows = 0
    total_batches = 0
    max_width = len(layout.header)
    pending: list[str] = []
    flush_at = 1
    for batch, body in batches(_exactly(rows, total), job_id, layout, limits, values):
        pending.append(body)
        total_rows += len(batch.rows)
        total_batches += 1
        max_width = max(max_width, *(len(r) for r in batch.rows))
        # Sent as produced: the first batch alone (workers start at once), then in doubling groups up to
        # SendMessageBatch's ten (the queue adapter cuts a group further to stay within 1 MiB a call).
        if len(pending) >= flush_at:
            queue.send(pending)
            pending = []
            flush_at = min(10, flush_at * 2)
    if pending:
        queue.send(pending)
    return total_rows, total_batches, max_width


def _exactly(rows: Iterable[list[str]], total: int) -> Iterator[list[str]]:
    """The rows, which must be as many as were counted (and reserved for) when the file was first read."""
    count = 0
    for row in rows:
        count += 1
        if count > total:
            raise _changed()
        yield row
    if count != total:
        raise _changed()


def _changed() -> InputError:
    return InputError("the file changed while it was being read; send it again", code="upload_changed")
