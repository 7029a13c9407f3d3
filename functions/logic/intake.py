"""Intake: which object in the bucket belongs to which job, and the one rule for counting a file's rows.

Every way a file comes in (a form upload through the API, a presigned upload, a URL the service fetches, a file an
operator drops into the bucket) lands at a key this module names and routes, and is counted by `limited_rows`.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from functions.errors import InputError
from functions.logic import csv_input
from functions.logic.bucket_keys import DROP_PREFIX, UPLOADS_PREFIX
from functions.models import Job, StoredLayout


@dataclass(frozen=True)
class UploadObject:
    """A file at uploads/<account_id>/<job_id>.csv: the file of an existing job."""

    account_id: str
    job_id: str


@dataclass(frozen=True)
class DropTarget:
    """A CSV dropped at drop/<account_id>/<type>/<name>.csv: a new job of that account."""

    account_id: str
    job_type: str
    filename: str


@dataclass(frozen=True)
class BadDrop:
    """A file under drop/ whose key does not have the drop shape."""

    key: str


def route_key(key: str) -> UploadObject | DropTarget | BadDrop | None:
    """What a created object is to the pipeline; None for keys it does not handle."""
    parts = key.split("/")
    if key.startswith(UPLOADS_PREFIX):
        if len(parts) == 3 and parts[1] and parts[2].startswith("job_") and parts[2].endswith(".csv"):
            return UploadObject(parts[1], parts[2].removesuffix(".csv"))
        return None
    if key.startswith(DROP_PREFIX):
        if len(parts) == 4 and all(parts[1:]):
            return DropTarget(parts[1], parts[2], parts[3])
        return BadDrop(key)
    return None


def drop_job_id(key: str, etag: str, sequencer: str) -> str:
    """A job id derived from the object version, so a duplicate S3 event maps to the same job."""
    digest = hashlib.sha256(f"{key}\n{etag}\n{sequencer}".encode()).hexdigest()
    return "job_d" + digest[:19]


def too_many_rows(max_rows: int) -> InputError:
    """The error of a file with more data rows than a job may have."""
    return InputError(f"the file has more than {max_rows} data rows", code="too_many_rows", max_rows=max_rows)


def no_rows() -> InputError:
    """The error of a file without a single data row."""
    return InputError("the file has no data rows", code="no_rows")


def limited_rows(rows: Iterable[list[str]], max_rows: int) -> Iterator[list[str]]:
    """The data rows, raising too_many_rows at the first row past the limit (so an oversized file costs no more
    than the limit) and no_rows at the end of a file that had none."""
    count = 0
    for row in rows:
        count += 1
        if count > max_rows:
            raise too_many_rows(max_rows)
        yield row
    if count == 0:
        raise no_rows()


def count_rows(rows: Iterable[list[str]], max_rows: int) -> int:
    """How many data rows there are, under the same rule as `limited_rows`."""
    return sum(1 for _ in limited_rows(rows, max_rows))


def stored_layout(job: Job) -> csv_input.CsvLayout | None:
    """The layout recorded when the file was first read (by the API, or an earlier split), or None."""
    if job.layout is None or not job.header or job.detected_column is None:
        return None
    return csv_input.CsvLayout(
        encoding=job.layout.encoding,
        delimiter=job.layout.delimiter,
        has_header=job.layout.has_header,
        header=list(job.header),
        column_index=job.layout.column_index,
        column=job.detected_column,
    )


def layout_record(layout: csv_input.CsvLayout) -> StoredLayout:
    """What the job item keeps of a detected layout (the header and column name are fields of their own)."""
    return StoredLayout(
        encoding=layout.encoding,
        delimiter=layout.delimiter,
        has_header=layout.has_header,
        column_index=layout.column_index,
    )


@dataclass(frozen=True)
class CsvFile:
    """A job's file, read: its layout, its data rows' count (`counted`: counted just now, so not reserved yet) and
    the rows to send."""

    layout: csv_input.CsvLayout
    total: int
    counted: bool
    rows: Iterator[list[str]]


def read_csv(
    job: Job,
    chunks: Iterable[bytes],
    *,
    reopen: Callable[[], Iterable[bytes]],
    on_layout: Callable[[csv_input.CsvLayout, StoredLayout], None],
    max_rows: int,
) -> CsvFile:
    """The one way the splitter reads a job's file: the layout it was stored with, else sniffed from its head (and
    handed to `on_layout` at once, to be recorded with the job); the count, when the API did not count the file
    (by `limited_rows`' rule); the data rows. A file counted here is read a second time from `reopen()`, lazily,
    so the caller reserves the count's credits before any row is sent."""
    layout = stored_layout(job)
    if layout is None:
        head, chunks = with_head(iter(chunks))
        layout = csv_input.sniff(head, job.type, job.column)
        on_layout(layout, layout_record(layout))
    if job.total_rows is not None:
        return CsvFile(layout, job.total_rows, False, csv_input.iter_rows(chunks, layout))
    total = count_rows(csv_input.iter_rows(chunks, layout), max_rows)
    return CsvFile(layout, total, True, _reread(reopen, layout))


def _reread(reopen: Callable[[], Iterable[bytes]], layout: csv_input.CsvLayout) -> Iterator[list[str]]:
    # A generator: the file is opened again only when the first row is asked for, after the reservation.
    yield from csv_input.iter_rows(reopen(), layout)


def with_head(chunks: Iterator[bytes]) -> tuple[bytes, Iterator[bytes]]:
    """Read the first SNIFF_BYTES for sniffing and give back a stream that still starts at byte 0."""
    head = bytearray()
    consumed: list[bytes] = []
    for chunk in chunks:
        consumed.append(chunk)
        head += chunk
        if len(head) >= csv_input.SNIFF_BYTES:
            break
    return bytes(head[: csv_input.SNIFF_BYTES]), itertools.chain(consumed, chunks)
