"""Downloads of a job's result: whether there is one, under which name, inline or by redirect, and its expiry."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from functions.errors import ConflictError, GoneError
from functions.logic import bucket_keys, variants
from functions.logic.job_views import offers_result, result_expired
from functions.logic.ports import BuildQueuePort, DownloadBlobPort, VariantRequestPort
from functions.logic.variants import Variant
from functions.models import Job, JobStatus
from functions.observability import logger

# A build not finished after this long is taken to have died (the builder's timeout is 15 minutes): asked again.
BUILD_STALE = timedelta(minutes=20)
# Rows a build handles per second, about (measured: tests/unit/test_variants.py); Retry-After is derived from it.
BUILD_ROWS_PER_SECOND = 100_000

_UNSAFE_NAME_CHARS = re.compile(r'[\x00-\x1f\x7f"\\/;]+')
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,4}$")


@dataclass(frozen=True)
class Pending:
    """A variant being built: ask again after `retry_after` seconds."""

    variant: str
    retry_after: int


@dataclass(frozen=True)
class Delivery:
    """How a ready download is answered: its bytes inline, or a redirect to a short-lived URL."""

    filename: str
    disposition: str
    content_type: str
    body: bytes | None = None
    url: str | None = None


def _gone(job: Job) -> GoneError:
    return GoneError(
        f"the result of job {job.id} is no longer kept (results are kept for a limited number of days); "
        "create the job again to get a new one",
        code="result_expired",
    )


def check_result(job: Job, now: datetime, retention_days: int) -> str:
    """The result's key if it can be downloaded now; 409 before the job ends or when it has none, 410 once expired."""
    if not job.status.is_terminal:
        raise ConflictError(
            f"job {job.id} is {job.status.value}; the result is ready when it has ended",
            code="job_not_finished",
            status=job.status.value,
        )
    if job.status == JobStatus.FAILED and job.processed == 0:
        raise ConflictError(
            f"job {job.id} failed ({job.error}); it has no result", code="job_failed", status=job.status.value
        )
    if job.result_key is None:
        raise ConflictError(
            f"job {job.id} is {job.status.value} and its result is being assembled; ask again in a few seconds",
            code="job_not_finished",
            status=job.status.value,
        )
    if result_expired(job, now, retention_days):
        raise _gone(job)
    return job.result_key


def result_present(job: Job, blobs: DownloadBlobPort, now: datetime, retention_days: int) -> bool:
    """False when the job has a result that is within its retention but the object is gone (removed by hand)."""
    if job.result_key is None or not offers_result(job) or result_expired(job, now, retention_days):
        return True  # nothing to look at: the status says so without asking the bucket
    if not job.status.is_terminal:
        return True  # assembled a moment ago, the job still completing: every poll of that moment would ask
    return blobs.head(job.result_key) is not None


def download_name(filename: str, job_id: str, extension: str, segment: str = "") -> str:
    """`leads.csv` -> `leads.enriched.csv` (or `.jsonl`): the upload's name without folders or its extension; a
    variant of some rows says which (`leads.enriched.valid.csv`, `leads.enriched.ok.csv`)."""
    base = re.split(r"[/\\]", filename)[-1].strip()
    base = _EXTENSION.sub("", base).strip(" .")
    base = _UNSAFE_NAME_CHARS.sub("_", base) or job_id
    return f"{base}.enriched.{segment + '.' if segment else ''}{extension}"


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII `filename` every client reads and RFC 6266's `filename*` for the real name."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii") or "result"
    if ascii_name == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def deliver(
    job: Job,
    key: str,
    *,
    blobs: DownloadBlobPort,
    extension: str,
    content_type: str,
    inline_max: int,
    url_ttl_seconds: int,
    segment: str = "",
) -> Delivery:
    """The object at `key` as the route answers it: inline up to `inline_max` bytes, else a presigned redirect.

    A missing object is an expired result (410), never a storage error: retrying would not bring it back.
    """
    filename = download_name(job.filename, job.id, extension, segment)
    disposition = content_disposition(filename)
    if inline_max < 0:  # only ever a link: whether the object is there is all there is to know
        if blobs.head(key) is None:
            raise _gone(job)
        return Delivery(filename, disposition, content_type, url=blobs.presigned_get(key, url_ttl_seconds, disposition))
    # One GET: its answer says the size, and the body of a small object is read from it (a HEAD first cost a request).
    found = blobs.get_if_small(key, inline_max)
    if found is None:
        raise _gone(job)
    _, body = found
    if body is None:
        return Delivery(filename, disposition, content_type, url=blobs.presigned_get(key, url_ttl_seconds, disposition))
    return Delivery(filename, disposition, content_type, body=body)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def retry_after(job: Job) -> int:
    """Seconds to wait before asking for a variant again: about how long building it takes, 1 to 30."""
    return max(1, min(30, 1 + (job.result_rows or 0) // BUILD_ROWS_PER_SECOND))


def download(
    job: Job,
    variant: Variant,
    *,
    store: VariantRequestPort,
    blobs: DownloadBlobPort,
    queue: BuildQueuePort,
    now: datetime,
    retention_days: int,
    inline_max: int,
    url_ttl_seconds: int,
) -> Delivery | Pending:
    """The result, or one of its variants: delivered when it exists, else its build is started (once) and Pending.

    The result as assembled is the variant with every row, CSV, in the input file's delimiter: always ready. A variant
    lives exactly as long as its result: once the result is past its date or gone, every variant answers 410 too,
    however recently it was built, and the request that finds this deletes the variants (the bucket's rule would keep
    a variant built late for up to the retention period after it was built).
    """
    try:
        key = check_result(job, now, retention_days)
        if variant != variants.base_variant(job) and blobs.head(key) is None:
            raise _gone(job)
    except GoneError:
        if job.result_key is not None:
            dropped = blobs.purge(bucket_keys.variant_folder(job))
            logger.info("variants of an expired result deleted", job_id=job.id, versions=dropped)
        raise

    def serve(object_key: str) -> Delivery:
        return deliver(
            job,
            object_key,
            blobs=blobs,
            extension=variant.format,
            content_type=variants.CONTENT_TYPES[variant.format],
            # A workbook is binary: always by link, never through the API's text answer.
            inline_max=-1 if variant.format == "xlsx" else inline_max,
            url_ttl_seconds=url_ttl_seconds,
            segment=variant.segment,
        )

    if variant == variants.base_variant(job):
        return serve(key)
    record = store.get_variant(job.id, variant.name)
    if record is not None and record.get("state") == "ready":
        return serve(str(record["key"]))
    if store.request_variant(job.id, variant.name, _iso(now), _iso(now - BUILD_STALE)):
        queue.send([json.dumps({"job_id": job.id, "variant": variant.name})])
    return Pending(variant.name, retry_after(job))


def variants_view(job: Job, records: list[dict[str, Any]], result_ready: bool) -> list[dict[str, Any]]:
    """The status's `variants`: the result itself first, then each variant asked for, ready or being built; none for
    a job that has ended without a result to offer (it would never become ready)."""
    if job.status.is_terminal and not offers_result(job):
        return []
    base = {**variants.base_variant(job).view(), "ready": result_ready, "rows": job.result_rows}
    listed = [base]
    for record in sorted(records, key=lambda r: str(r.get("name"))):
        ready = result_ready and record.get("state") == "ready"
        listed.append({**Variant.from_name(str(record["name"])).view(), "ready": ready, "rows": record.get("rows")})
    return listed
