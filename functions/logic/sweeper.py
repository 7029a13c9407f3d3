"""The sweeper: no job stays unfinished. Runs on a schedule over the jobs that have not ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from functions.errors import StoreError
from functions.logic.jobs import FinalizerPort, StatusPort, utcnow
from functions.models import Job, JobStatus
from functions.observability import logger


class SweepStorePort(StatusPort, Protocol):
    """What the sweeper needs from the jobs table."""

    def active_job_ids(self, created_before: str, limit: int = 500) -> list[str]: ...


class UploadedFilesPort(Protocol):
    """Whether a job's file is in the bucket: its metadata (`LastModified`), or None when it is absent."""

    def head(self, key: str) -> dict[str, Any] | None: ...


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
    fetch_wait: timedelta = timedelta(hours=24),
    fetch_lease: timedelta = timedelta(minutes=105),
) -> tuple[str, str] | None:
    """What to do with an unfinished job: ("finalize", why), ("fail", code) or None (it is moving).

    An `upload_expired` verdict is on time alone: `sweep` looks for the file before it acts on it.
    """
    if job.status.is_terminal:
        return None
    if job.status == JobStatus.AWAITING_UPLOAD:
        return ("fail", "upload_expired") if _older(job.upload_expires_at, now - upload_grace) else None
    if job.status == JobStatus.QUEUED:
        if job.source_url and not job.fetched_at:
            # Timed from the fetch, not from creation: a job may wait its turn for a fetch slot, and a fetch may run
            # for its whole time limit. Only a fetch that never started, or started and never ended, fails.
            if job.fetch_started_at:
                return ("fail", "fetch_failed") if _older(job.fetch_started_at, now - fetch_lease) else None
            return ("fail", "fetch_failed") if _older(job.created_at, now - fetch_wait) else None
        return ("fail", "not_started") if _older(job.fetched_at or job.created_at, now - start_after) else None
    if job.total_batches is None:
        return ("fail", "split_failed") if _older(job.split_started_at, now - split_lease) else None
    if job.batches_done >= job.total_batches:
        return ("finalize", "all batches counted")
    last = job.last_progress_at or job.split_started_at or job.started_at
    return ("fail", "stalled") if _older(last, now - stalled_after) else None


def _landed(job: Job, files: UploadedFilesPort, now: datetime, start_after: timedelta) -> tuple[str, str] | None:
    """An expired upload form whose file is in the bucket after all (it landed while the splitter was busy, or a
    large upload finished after the grace): not `upload_expired`. It waits for its split like any uploaded file,
    and fails `not_started` only if it is never picked up. None: the file is absent."""
    found = files.head(job.source_key)
    if found is None:
        return None
    landed = found.get("LastModified")
    if isinstance(landed, datetime) and landed < now - start_after:
        return ("fail", "not_started")
    return ("wait", "file landed")


MESSAGES = {
    "upload_expired": "no file arrived through the upload form before it expired; create a new job to upload it",
    "not_started": "the uploaded file was never picked up for processing",
    "fetch_failed": "the file could not be fetched from its URL (its fetch never started or never ended)",
    "split_failed": "the file could not be split into work (the splitter kept failing)",
    "stalled": "no batch finished for too long; the rows processed so far are kept",
}


def sweep(
    store: SweepStorePort,
    finalizer: FinalizerPort,
    *,
    files: UploadedFilesPort,
    start_after: timedelta,
    split_lease: timedelta,
    stalled_after: timedelta,
    upload_ttl: timedelta = timedelta(minutes=1),
    upload_grace: timedelta = timedelta(0),
    fetch_wait: timedelta = timedelta(hours=24),
    fetch_lease: timedelta = timedelta(minutes=105),
    now: datetime | None = None,
) -> dict[str, list[str]]:
    """Finalize jobs whose last batch is counted but were never finalized; fail jobs that cannot move on.

    A presigned upload's job fails `upload_expired` only when its file is really absent (a HEAD on its key).
    """
    now = now or datetime.now(UTC)
    outcome: dict[str, list[str]] = {"finalized": [], "failed": []}
    # A job younger than every threshold cannot need anything yet.
    oldest_useful = min(
        start_after,
        split_lease,
        stalled_after,
        upload_ttl + upload_grace,
        fetch_wait,
        fetch_lease,
        timedelta(minutes=1),
    )
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
            fetch_wait=fetch_wait,
            fetch_lease=fetch_lease,
        )
        if action == ("fail", "upload_expired"):
            try:
                action = _landed(job, files, now, start_after) or action
            except StoreError:
                # Not knowing is not absence: the job waits for the next sweep, the others are swept now.
                logger.exception("sweeper could not look for the upload", job_id=job_id, key=job.source_key)
                continue
        if action is None or action[0] == "wait":
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
