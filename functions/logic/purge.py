"""Purging a job (`DELETE /api/bulk-jobs?id=&purge=true`): an ended job's files and items go, its ledger stays.

A cancel never purges (`jobs.cancel_job`): a client that cancels a job just as it ends keeps its result.
"""

from __future__ import annotations

from functions.errors import ConflictError
from functions.logic.bucket_keys import parts_prefix, result_key, variant_folder
from functions.logic.clock import utcnow
from functions.logic.jobs import get_job_for
from functions.logic.ports import PurgeBlobPort, PurgeStorePort
from functions.models import Job
from functions.observability import logger


def job_files(job: Job) -> list[tuple[str, bool]]:
    """What a job left in the bucket: (key, exact) pairs, or (prefix, False) for folders."""
    return [
        (job.source_key, True),
        (parts_prefix(job.id), False),
        (job.result_key or result_key(job), True),
        (variant_folder(job), False),
    ]


def purge_job(store: PurgeStorePort, blobs: PurgeBlobPort, account_id: str, job_id: str) -> None:
    """Purge an ended job whose credits are settled: its files, then its items; 409 while it has not ended.

    A job that has ended but whose finalizer has not yet settled its credits answers 409 `job_not_finished` (ask
    again in a few seconds): purging it then would take the job from under the refund. Files go first and the items
    last, so a purge that stops halfway is finished by the next purge request.
    """
    job = get_job_for(store, account_id, job_id, include_purging=True)
    if not job.status.is_terminal:
        raise ConflictError(
            f"job {job_id} is {job.status.value}; cancel it first (DELETE without purge), then purge it once it "
            "has ended",
            code="job_not_finished",
            status=job.status.value,
        )
    purging = store.begin_purge(job.id, utcnow()) if job.credits_settled else None
    if purging is None:  # not settled yet (or a stale copy was read), or deleted meanwhile (then 404)
        current = get_job_for(store, account_id, job_id, include_purging=True)
        raise ConflictError(
            f"job {job_id} has ended and its unused credits are being refunded; ask again in a few seconds",
            code="job_not_finished",
            status=current.status.value,
        )
    versions = sum(blobs.purge(prefix, exact=exact) for prefix, exact in job_files(purging))
    store.delete_job(job.id)
    logger.info("job purged", job_id=job.id, versions=versions)
