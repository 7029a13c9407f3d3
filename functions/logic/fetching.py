"""Files the service fetches itself: a job created with a `url` is queued, fetched into the bucket, then split."""

from __future__ import annotations

from typing import Protocol
from urllib.parse import unquote, urlsplit

from functions.errors import FetchError, InputError
from functions.logic.intake import upload_key
from functions.logic.jobs import (
    FinalizerPort,
    JobStorePort,
    PhoneOptions,
    StatusPort,
    check_type,
    fail_unstarted,
    new_job_id,
    utcnow,
)
from functions.models import Job, JobStatus
from functions.observability import logger


class FetchPort(Protocol):
    """Streams the file at a URL into the bucket; raises FetchError (fetch_blocked, fetch_too_large, fetch_failed)."""

    def fetch(self, url: str, key: str, *, max_bytes: int) -> int: ...


def check_source_url(url: str, *, allow_http: bool) -> str:
    """A URL the service may try to fetch (its address is judged when it is fetched); 400 invalid_parameter if not.

    Deployed only https; locally (`allow_http`) http too. User info (`user:pass@`) is refused: it would be stored
    with the job and shown back.
    """
    url = url.strip()
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError as exc:
        raise InputError(f"`url` is not a valid URL: {exc}", code="invalid_parameter", parameter="url") from exc
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise InputError("`url` must be an absolute https URL", code="invalid_parameter", parameter="url")
    if parts.username is not None or parts.password is not None:
        raise InputError(
            "`url` may not carry a user name or password; use a presigned or token URL",
            code="invalid_parameter",
            parameter="url",
        )
    return url


class FetchRequestPort(Protocol):
    """Queues the fetch of a job's file."""

    def request_fetch(self, job_id: str) -> None: ...


def create_remote_job(
    *,
    account_id: str,
    job_type: str,
    url: str,
    column: str | None,
    allow_http: bool,
    store: JobStorePort,
    queue: FetchRequestPort,
    options: PhoneOptions = PhoneOptions(),  # noqa: B008 - frozen, shared safely
) -> Job:
    """A job whose file the service fetches from `url` (queued until fetched); nothing is reserved before the
    file's rows are counted (the splitter)."""
    job_type = check_type(job_type)
    url = check_source_url(url, allow_http=allow_http)
    job = Job(
        id=new_job_id(),
        account_id=account_id,
        type=job_type,
        status=JobStatus.QUEUED,
        source_key="",
        filename=filename_of(url),
        column=column or None,
        country=options.country,
        country_column=options.country_column,
        created_at=utcnow(),
        source_url=url,
    )
    job.source_key = upload_key(account_id, job.id)
    store.put_new_job(job)
    try:
        queue.request_fetch(job.id)
    except Exception:
        fail_unstarted(store, job.id, "fetch_failed", "the fetch could not be queued; nothing was charged")
        raise
    return job


def filename_of(url: str) -> str:
    """The file name a URL ends with (`leads.csv`), or `remote.csv`."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]).strip()
    return name[:255] or "remote.csv"


def fetch_job(job_id: str, *, store: StatusPort, fetcher: FetchPort, finalizer: FinalizerPort, max_bytes: int) -> str:
    """Fetch a queued job's file into its upload key (its S3 event then starts the split, as for any upload).

    A fetch that fails for a reason the customer has to fix ends the job `failed` with the reason's code (and the
    finalizer publishes it); anything else raises, so the queue retries it.
    """
    job = store.get_job(job_id)
    if job is None or job.status != JobStatus.QUEUED or not job.source_url:
        logger.info("fetch skipped", job_id=job_id, status=job.status.value if job else None)
        return "skipped"
    host = urlsplit(job.source_url).hostname
    try:
        size = fetcher.fetch(job.source_url, job.source_key, max_bytes=max_bytes)
    except FetchError as exc:
        logger.info("fetch failed", job_id=job_id, host=host, error=exc.code, reason=exc.message)
        failed = store.set_status(
            job_id, JobStatus.FAILED, only_from=("queued",), now=utcnow(), error=exc.code, error_message=exc.message
        )
        if failed is not None:
            finalizer.start(job_id)
        return exc.code
    logger.info("fetched", job_id=job_id, host=host, bytes=size)
    return "fetched"
