"""The sweeper: no job stays unfinished. Runs on a schedule over the jobs that have not ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from functions.logic.jobs import FinalizerPort, StatusPort, utcnow
from functions.models import Job, JobStatus
from functions.observability import logger


class SweepStorePort(StatusPort, Protocol):
    """What the sweeper needs from the jobs table."""

    def active_job_ids(self, created_before: str, limit: int = 500) -> list[str]: ...


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _older(stamp: str | None, limit: datetime) -> bool:
    return stamp is not None and stamp < _iso(limit)


def decide(
    job: Job,
    now: datetime,
    *,
    start_after: timedelta,
    split_lease: timedelta,
    stalled_after: timedelta,
    upload_grace: timedelta = timedelta(0),
) -> tuple[str, str] | None:
    """What to do with an unfinished job: ("finalize", why), ("fail", code) or None (it is moving)."""
    if job.status.is_terminal:
        return None
    if job.status == JobStatus.AWAITING_UPLOAD:
        return ("fail", "upload_expired") if _older(job.upload_expires_at, now - upload_grace) else None
    if job.status == JobStatus.QUEUED:
        if not _older(job.created_at, now - start_after):
            return None
        # A file to fetch whose fetch kept failing (each fetch is capped well below start_after).
        return ("fail", "fetch_failed") if job.source_url else ("fail", "not_started")
    if job.total_batches is None:
        return ("fail", "split_failed") if _older(job.split_started_at, now - split_lease) else None
    if job.batches_done >= job.total_batches:
        return ("finalize", "all batches counted")
    last = job.last_progress_at or job.split_started_at or job.started_at
    return ("fail", "stalled") if _older(last, now - stalled_after) else None


MESSAGES = {
    "upload_expired": "no file arrived through the upload form before it expired; create a new job to upload it",
    "not_started": "the uploaded file was never picked up for processing",
    "fetch_failed": "the file could not be fetched from its URL (the fetch kept failing)",
    "split_failed": "the file could not be split into work (the splitter kept failing)",
    "stalled": "no batch finished for too long; the rows processed so far are kept",
}


def sweep(
    store: SweepStorePort,
    finalizer: FinalizerPort,
    *,
    start_after: timedelta,
    split_lease: timedelta,
    stalled_after: timedelta,
    upload_ttl: timedelta = timedelta(minutes=1),
    upload_grace: timedelta = timedelta(0),
    now: datetime | None = None,
) -> dict[str, list[str]]:
    """Finalize jobs whose last batch is counted but were never finalized; fail jobs that cannot move on."""
    now = now or datetime.now(UTC)
    outcome: dict[str, list[str]] = {"finalized": [], "failed": []}
    # A job younger than every threshold cannot need anything yet.
    oldest_useful = min(start_after, split_lease, stalled_after, upload_ttl + upload_grace, timedelta(minutes=1))
    for job_id in store.active_job_ids(_iso(now - oldest_useful)):
        job = store.get_job(job_id)
        if job is None:
            continue
        action = decide(
            job,
            now,
            start_after=start_after,
            split_lease=split_lease,
            stalled_after=stalled_after,
            upload_grace=upload_grace,
        )
        if action is None:
            continue
        kind, reason = action
        if kind == "fail":
            if (
                store.set_status(
                    job_id,
                    JobStatus.FAILED,
                    only_from=("awaiting_upload", "queued", "processing"),
                    now=utcnow(),
                    error=reason,
                    error_message=MESSAGES[reason],
                )
                is None
            ):
                continue
            outcome["failed"].append(job_id)
        else:
            outcome["finalized"].append(job_id)
        logger.warning("sweeper acted", job_id=job_id, action=kind, reason=reason)
        finalizer.start(job_id)
    return outcome
