"""DELETE of a job: a running job is cancelled; an ended one is purged (its files and items), its ledger kept."""

from __future__ import annotations

from functions.logic.bucket_keys import parts_prefix, result_key, variant_folder
from functions.logic.clock import utcnow
from functions.logic.jobs import cancel_job, get_job_for
from functions.logic.ports import FinalizerPort, PurgeBlobPort, PurgeStorePort
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


def delete_job(
    store: PurgeStorePort, blobs: PurgeBlobPort, finalizer: FinalizerPort, account_id: str, job_id: str
) -> Job | None:
    """Cancel a job that is still running (the job, cancelled), purge one that has ended (None).

    A job that has ended but whose finalizer has not yet settled its credits is answered as it is, like a second
    cancel: purging it then would take the job from under the refund. Files go first and the items last, so a
    purge that stops halfway is finished by the next DELETE.
    """
    job = get_job_for(store, account_id, job_id, include_purging=True)
    if not job.status.is_terminal:
        return cancel_job(store, finalizer, account_id, job_id)
    if not job.credits_settled:
        return job
    purging = store.begin_purge(job.id, utcnow())
    if purging is None:  # not settled after all (read a stale copy) or deleted meanwhile
        return get_job_for(store, account_id, job_id, include_purging=True)
    versions = sum(blobs.purge(prefix, exact=exact) for prefix, exact in job_files(purging))
    store.delete_job(job.id)
    logger.info("job purged", job_id=job.id, versions=versions)
    return None
