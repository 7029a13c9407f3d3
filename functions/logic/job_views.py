"""What a client sees of a job: its status (progress, ETA, whether and until when its result can be downloaded) and
the answer to its creation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from functions.models import Job, JobStatus


def _parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def _seconds_between(start: str, end: datetime) -> float:
    return (end - _parse(start)).total_seconds()


def offers_result(job: Job) -> bool:
    """Whether the job has a result to download: assembled, and not a failure before any row was processed.

    The finalizer writes a header-only file for every ended job; for a job that failed with nothing processed (a
    refused fetch, a file over the balance) it holds no row, so the status, the download and the webhook say there
    is no result rather than offering it.
    """
    return job.result_key is not None and not (job.status == JobStatus.FAILED and job.processed == 0)


def result_expires_at(job: Job, retention_days: int | None) -> str | None:
    """When the result stops being downloadable: `retention_days` after it was written (None: no result yet).

    The bucket's lifecycle rule deletes the object at the first midnight UTC after that, never before it, so the
    API stops offering it from this moment on rather than leaving clients to find out from a missing object.
    """
    written = job.result_at or job.completed_at
    if not offers_result(job) or written is None or retention_days is None:
        return None
    expires = _parse(written) + timedelta(days=retention_days)
    return expires.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def result_expired(job: Job, now: datetime, retention_days: int | None) -> bool:
    """Whether the job's result is past its retention."""
    expires = result_expires_at(job, retention_days)
    return expires is not None and now >= _parse(expires)


def status_view(
    job: Job, now: datetime | None = None, *, retention_days: int | None = None, result_present: bool = True
) -> dict[str, Any]:
    """The status JSON a client sees; `result_present` is False when the result object was found missing."""
    now = now or datetime.now(UTC)
    total = job.total_rows
    percent = round(100.0 * job.processed / total, 1) if total else 0.0
    eta: float | None = None
    if job.status.is_terminal:
        eta = 0.0
    elif job.status == JobStatus.PROCESSING and total and job.processed and job.started_at:
        elapsed = _seconds_between(job.started_at, now)
        if elapsed > 0:
            eta = round((total - job.processed) / (job.processed / elapsed), 1)
    view: dict[str, Any] = {
        "id": job.id,
        "status": job.status.value,
        "type": job.type,
        "filename": job.filename,
        "column": job.column or job.detected_column,
        "country": job.country,
        "country_column": job.country_column,
        "total_rows": total,
        "processed": job.processed,
        "succeeded": job.succeeded,
        "invalid": job.invalid,
        "failed": job.failed,
        "duplicates": job.duplicates,
        "percent": percent if not job.status == JobStatus.COMPLETED else 100.0,
        "eta_seconds": eta,
        "credits_reserved": job.credits_reserved,
        "credits_used": job.credits_used,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "result_ready": offers_result(job) and result_present and not result_expired(job, now, retention_days),
        "result_expires_at": result_expires_at(job, retention_days),
        "error": job.error,
        "error_message": job.error_message,
        "upload_expires_at": job.upload_expires_at,
        "split_bytes_read": job.split_bytes_read,
        "split_bytes_total": job.split_bytes_total,
        "summary": job.summary if offers_result(job) else None,
    }
    return view


def create_view(job: Job, upload: dict[str, Any] | None = None) -> dict[str, Any]:
    """The create response: id, status, type, total_rows, processed, created_at; `upload` for a presigned upload."""
    view: dict[str, Any] = {
        "id": job.id,
        "status": job.status.value,
        "type": job.type,
        "total_rows": job.total_rows,
        "processed": job.processed,
        "created_at": job.created_at,
    }
    if upload is not None:
        view["upload"] = upload
    return view
