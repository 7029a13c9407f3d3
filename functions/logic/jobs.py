"""Job lifecycle: create, read, cancel. Pure domain code: stores are passed in."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.enrich import countries
from functions.errors import ConflictError, InputError, NotFoundError, PayloadTooLargeError
from functions.logic import bucket_keys, csv_input, input_formats, intake
from functions.logic.clock import iso, new_job_id, utcnow
from functions.logic.ports import (
    BlobPort,
    FinalizerPort,
    JobStorePort,
    PresignPort,
    ReservingPort,
    StatusPort,
)
from functions.models import JOB_TYPES, Job, JobStatus


def check_type(job_type: str) -> str:
    """The normalized job type, or 400 unsupported_type."""
    normalized = job_type.strip().lower()
    if normalized not in JOB_TYPES:
        raise InputError(
            f"type must be one of {', '.join(JOB_TYPES)}", code="unsupported_type", allowed=list(JOB_TYPES)
        )
    return normalized


@dataclass(frozen=True)
class PhoneOptions:
    """A phone job's options: the region numbers without `+` are read in, and the column naming each row's."""

    country: str | None = None
    country_column: str | None = None


def check_phone_options(job_type: str, country: str | None, country_column: str | None) -> PhoneOptions:
    """The job's phone options, checked: 400 invalid_parameter for a country that is not a region, or for options
    given to a job that is not a phone job (they would be ignored there)."""
    for name, value in (("country", country), ("country_column", country_column)):
        if value and job_type != "phone":
            raise InputError(f"`{name}` applies to phone jobs only", code="invalid_parameter", parameter=name)
    try:
        code = countries.checked_country(country)
    except ValueError as exc:
        raise InputError(str(exc), code="invalid_parameter", parameter="country") from exc
    return PhoneOptions(code, (country_column or "").strip() or None)


def check_country_column(layout: csv_input.CsvLayout, named: str | None) -> None:
    """400 column_not_found when the job names a country column the file does not have."""
    if named and countries.country_column(list(layout.header), named, layout.column_index) is None:
        raise InputError(
            f"no column {named!r} for the rows' country", code="column_not_found", available=list(layout.header)
        )


@dataclass(frozen=True)
class CheckedUpload:
    """An uploaded file that can become a job: its normalized type, how it is read, and its data rows."""

    job_type: str
    layout: csv_input.CsvLayout
    # None for a compressed file or a workbook: the splitter counts its rows (as for a presigned upload).
    total_rows: int | None
    kind: input_formats.Kind = input_formats.Kind.CSV


def check_upload(
    job_type: str,
    body: bytes,
    column: str | None,
    *,
    max_rows: int,
    max_bytes: int,
    options: PhoneOptions = PhoneOptions(),
    sheet: str | None = None,
    max_file_bytes: int = 1024**3,
) -> CheckedUpload:
    """Every check a file passes before it becomes a job (type, size, emptiness, layout, row count).

    A CSV is counted here. A gzip, ZIP or workbook is checked as far as its head tells (its kind, a ZIP's one
    member and declared size, the layout of its first rows); its rows are counted by the splitter, whose reading
    never holds the uncompressed content in memory.
    """
    job_type = check_type(job_type)
    if len(body) > max_bytes:
        raise PayloadTooLargeError(
            f"the file is {len(body)} bytes; the limit through the API is {max_bytes} bytes", max_bytes=max_bytes
        )
    if not body.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise InputError("the file is empty", code="empty_file")
    kind = input_formats.kind_of(body[:8])
    if kind is not input_formats.Kind.CSV:
        decoded = decode_upload(body, max_file_bytes=max_file_bytes, sheet=sheet)
        head = read_head(decoded.chunks, csv_input.SNIFF_BYTES)
        head_layout = csv_input.sniff(head, job_type, column or None)
        check_country_column(head_layout, options.country_column)
        return CheckedUpload(job_type, head_layout, None, decoded.kind)
    layout = csv_input.sniff(body[: csv_input.SNIFF_BYTES], job_type, column or None)
    check_country_column(layout, options.country_column)
    return CheckedUpload(job_type, layout, intake.count_rows(csv_input.iter_rows([body], layout), max_rows))


def decode_upload(
    body: bytes, *, max_file_bytes: int, sheet: str | None = None, partial: bool = False
) -> input_formats.Decoded:
    """An uploaded file (in memory) as a CSV stream, whatever its kind."""
    source = input_formats.Source(body[: csv_input.SNIFF_BYTES], lambda: iter([body]), lambda: io.BytesIO(body))
    return input_formats.decode(source, max_bytes=max_file_bytes, sheet=sheet, partial=partial)


def read_head(chunks: Iterator[bytes], size: int) -> bytes:
    """The first `size` bytes of a stream (fewer if it is shorter)."""
    head = bytearray()
    for chunk in chunks:
        head += chunk
        if len(head) >= size:
            break
    return bytes(head[:size])


def create_job(
    *,
    account_id: str,
    job_type: str,
    filename: str,
    body: bytes,
    column: str | None,
    max_rows: int,
    max_bytes: int,
    store: JobStorePort,
    credits: ReservingPort,
    blobs: BlobPort,
    request_id: str | None = None,
    options: PhoneOptions = PhoneOptions(),
    sheet: str | None = None,
    max_file_bytes: int = 1024**3,
) -> Job:
    """Validate an uploaded file, store the job (queued) reserving its credits, then its file (which starts it).

    A compressed file or a workbook is stored as it came; the splitter counts its rows and reserves their credits.
    """
    checked = check_upload(
        job_type,
        body,
        column,
        max_rows=max_rows,
        max_bytes=max_bytes,
        sheet=sheet,
        max_file_bytes=max_file_bytes,
        options=options,
    )
    layout, total = checked.layout, checked.total_rows
    now = utcnow()
    job = Job(
        id=new_job_id(),
        account_id=account_id,
        type=checked.job_type,
        status=JobStatus.QUEUED,
        source_key="",
        filename=filename,
        column=column or None,
        country=options.country,
        country_column=options.country_column,
        sheet=sheet or None,
        created_at=now,
        total_rows=total,
        delimiter=layout.delimiter,
        encoding=layout.encoding,
        # Read once: the splitter uses this layout instead of sniffing the file again.
        layout=intake.layout_record(layout),
        header=list(layout.header),
        detected_column=layout.column,
    )
    job.source_key = bucket_keys.upload_key(account_id, job.id)
    if total is None:
        store.put_new_job(job)  # reserved for when the splitter has counted the rows
    else:
        # 402 here when the balance is short: nothing stored, nothing sent
        credits.create_job_reserving(job, now, request_id)
    try:
        blobs.put(job.source_key, body, metadata={"job-id": job.id, "account-id": account_id})
    except Exception:
        fail_unstarted(store, job.id, "upload_failed", "the file could not be stored; nothing was charged")
        raise
    return job


def fail_unstarted(store: StatusPort, job_id: str, error: str, message: str) -> None:
    """End a job just stored whose first step (storing its file, queuing its fetch) failed: it never started."""
    store.set_status(job_id, JobStatus.FAILED, only_from=("queued",), now=utcnow(), error=error, error_message=message)


def create_upload_job(
    *,
    account_id: str,
    job_type: str,
    filename: str,
    column: str | None,
    max_object_bytes: int,
    ttl_seconds: int,
    store: JobStorePort,
    blobs: PresignPort,
    options: PhoneOptions = PhoneOptions(),
    sheet: str | None = None,
) -> tuple[Job, dict[str, Any]]:
    """A job waiting for its file (`awaiting_upload`) and the presigned S3 form to send the file with.

    Nothing is reserved yet: the rows are counted, and their credits reserved, when the file lands (the splitter).
    """
    job_type = check_type(job_type)
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=ttl_seconds)
    job = Job(
        id=new_job_id(),
        account_id=account_id,
        type=job_type,
        status=JobStatus.AWAITING_UPLOAD,
        source_key="",
        filename=filename,
        column=column or None,
        country=options.country,
        country_column=options.country_column,
        sheet=sheet or None,
        created_at=iso(now),
        upload_expires_at=iso(expires),
    )
    job.source_key = bucket_keys.upload_key(account_id, job.id)
    url, fields = blobs.presigned_post(job.source_key, max_bytes=max_object_bytes, expires_in=ttl_seconds)
    store.put_new_job(job)
    return job, {"method": "POST", "url": url, "fields": fields, "expires_at": job.upload_expires_at}


def get_job_for(store: StatusPort, account_id: str, job_id: str, *, include_purging: bool = False) -> Job:
    """The job if it belongs to this account; 404 otherwise (another account's job is indistinguishable).

    A job being purged is gone for every read but the DELETE that may have to finish its purge.
    """
    job = store.get_job(job_id) if job_id.startswith("job_") else None
    if job is None or job.account_id != account_id or (job.purging_at is not None and not include_purging):
        raise NotFoundError(f"no job {job_id}", code="job_not_found")
    return job


# Statuses a job can be cancelled from (every one before the end).
CANCELLABLE = ("awaiting_upload", "queued", "processing")


def cancel_job(store: StatusPort, finalizer: FinalizerPort, account_id: str, job_id: str) -> Job:
    """Cancel at once; the rows already processed stay, and the finalizer assembles them into the result."""
    job = get_job_for(store, account_id, job_id)
    if job.status == JobStatus.CANCELLED:
        return job
    if job.status.is_terminal:
        raise ConflictError(f"job {job_id} has already ended ({job.status.value})", code="job_finished")
    updated = store.set_status(job_id, JobStatus.CANCELLED, only_from=CANCELLABLE, now=utcnow())
    if updated is None:  # it ended between the read and the write
        job = get_job_for(store, account_id, job_id)
        if job.status != JobStatus.CANCELLED:
            raise ConflictError(f"job {job_id} has already ended ({job.status.value})", code="job_finished")
        return job
    finalizer.start(job_id)
    return updated


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    """An opaque page cursor from DynamoDB's LastEvaluatedKey."""
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode().rstrip("=")


# The LastEvaluatedKey of the by_account index: the table's key and the index's.
CURSOR_KEYS = frozenset({"pk", "sk", "account_id", "created_at"})


def decode_cursor(cursor: str, account_id: str) -> dict[str, Any] | None:
    """The LastEvaluatedKey inside a cursor; 400 invalid_cursor when it was not made by encode_cursor for this
    account (a cursor of another shape would reach DynamoDB as a malformed key)."""
    if not cursor:
        return None
    invalid = InputError("the cursor is not valid; use `next_cursor` of the previous page", code="invalid_cursor")
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid from exc
    if not isinstance(value, dict) or set(value) != CURSOR_KEYS:
        raise invalid
    for attribute in value.values():
        if not (isinstance(attribute, dict) and set(attribute) == {"S"} and isinstance(attribute["S"], str)):
            raise invalid
    if value["account_id"]["S"] != account_id or not value["pk"]["S"].startswith("JOB#"):
        raise invalid
    return value
