"""A file an operator drops into the bucket (drop/<account_id>/<type>/<name>) becomes a job, or is moved to
rejected/ with the reason beside it."""

from __future__ import annotations

import json

from functions.errors import InputError
from functions.logic import intake
from functions.logic.bucket_keys import rejected_key
from functions.logic.clock import utcnow
from functions.logic.jobs import check_type
from functions.logic.ports import BalancePort, JobStorePort, SplitBlobPort
from functions.models import Job, JobStatus


def reject_drop(blobs: SplitBlobPort, key: str, code: str, message: str) -> str:
    """Move a dropped file that cannot become a job to rejected/, with a reason file beside it."""
    dest = rejected_key(key)
    blobs.copy(key, dest)
    blobs.put(
        dest + ".reason.json",
        json.dumps({"error": code, "message": message, "source_key": key}).encode(),
        content_type="application/json",
    )
    blobs.delete(key)
    return dest


def job_for_drop(
    key: str,
    etag: str,
    sequencer: str,
    store: JobStorePort,
    credits: BalancePort,
    blobs: SplitBlobPort,
    column: str | None = None,
    sheet: str | None = None,
) -> Job | None:
    """The job for a dropped file (created on first sight); None when the drop was rejected.

    `column` comes from the object's `x-amz-meta-column` metadata, the drop's way of saying which column to use;
    `sheet` from `x-amz-meta-sheet`, a workbook's sheet to read.
    """
    target = intake.route_key(key)
    if not isinstance(target, intake.DropTarget):
        reject_drop(blobs, key, "invalid_drop_key", "drop files go to drop/<account_id>/<type>/<name>")
        return None
    try:
        job_type = check_type(target.job_type)
    except InputError as exc:
        reject_drop(blobs, key, exc.code, exc.message)
        return None
    if credits.account_credits(target.account_id) is None:
        reject_drop(blobs, key, "unknown_account", f"no account {target.account_id}")
        return None
    job_id = intake.drop_job_id(key, etag, sequencer)
    job = Job(
        id=job_id,
        account_id=target.account_id,
        type=job_type,
        status=JobStatus.QUEUED,
        source_key=key,
        filename=target.filename,
        column=column or None,
        sheet=sheet or None,
        created_at=utcnow(),
    )
    if not store.put_new_job(job):
        existing = store.get_job(job_id)
        return existing
    return job
