"""Files the service fetches itself: a job created with a `url` is queued, fetched into the bucket, then split."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urlsplit

from functions.errors import FetchError, InputError
from functions.logic.bucket_keys import upload_key
from functions.logic.clock import iso, new_job_id, utcnow
from functions.logic.jobs import PhoneOptions, check_type, fail_unstarted
from functions.logic.ports import (
    FetchPort,
    FetchRequestPort,
    FetchSlotsPort,
    FetchStorePort,
    FinalizerPort,
    JobStorePort,
)
from functions.logic.urls import UrlError, clean_url
from functions.models import Job, JobStatus
from functions.observability import logger


def check_source_url(url: str, *, allow_http: bool) -> str:
    """The URL as it will be fetched (its address is judged when it is fetched); 400 invalid_parameter if it cannot be.

    Deployed only https; locally (`allow_http`) http too. The rules of functions/logic/urls.py: no user info (it
    would be stored with the job and shown back), no whitespace or control characters (a CR/LF was accepted here and
    failed the fetch later), non-ASCII text percent-encoded.
    """
    try:
        return clean_url(url, schemes=("https", "http") if allow_http else ("https",))
    except UrlError as exc:
        raise InputError(f"`url` cannot be fetched: {exc}", code="invalid_parameter", parameter="url") from exc


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
    sheet: str | None = None,
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
        sheet=sheet or None,
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


def fetch_job(
    job_id: str,
    *,
    store: FetchStorePort,
    fetcher: FetchPort,
    finalizer: FinalizerPort,
    max_bytes: int,
    slots: FetchSlotsPort,
    queue: FetchRequestPort,
    slot_wait_seconds: int,
    lease_seconds: float,
) -> str:
    """Fetch a queued job's file into its upload key (its S3 event then starts the split, as for any upload).

    The fetch first takes one of its account's fetch slots; when the account holds all of its share, the fetch is
    queued again for later ("deferred"), so one account's slow URLs never hold every concurrent fetch. The fetch's
    start is recorded on the job: the sweeper times a URL job from there, not from its creation. A fetch that fails
    for a reason the customer has to fix ends the job `failed` with the reason's code (and the finalizer publishes
    it); anything else raises, so the queue retries it.

    SQS delivers a message at least once: a second delivery while the first one's fetch runs (started less than
    `lease_seconds` ago, the longest a fetch can last) is "running": skipped, leaving the first one its slot, so one
    file is never downloaded twice at once into the same key. A retry after a fetcher crashed comes after the queue's
    visibility timeout, past the lease.
    """
    job = store.get_job(job_id)
    if job is None or job.status != JobStatus.QUEUED or not job.source_url or job.fetched_at:
        logger.info("fetch skipped", job_id=job_id, status=job.status.value if job else None)
        return "skipped"
    now = datetime.now(UTC)
    running_since = iso(now - timedelta(seconds=lease_seconds))
    if job.fetch_started_at and job.fetch_started_at >= running_since:
        logger.info("fetch skipped: another delivery is fetching it", job_id=job_id, started=job.fetch_started_at)
        return "running"
    if not slots.acquire(job.account_id, job_id):
        queue.request_fetch(job_id, delay_seconds=slot_wait_seconds)
        logger.info("fetch deferred: the account holds all its fetch slots", job_id=job_id, wait=slot_wait_seconds)
        return "deferred"
    outcome = "failed"
    try:
        outcome = _fetch(
            job, iso(now), running_since, store=store, fetcher=fetcher, finalizer=finalizer, max_bytes=max_bytes
        )
        return outcome
    finally:
        if outcome != "running":  # the slot is the other delivery's, which holds it for the same job
            slots.release(job.account_id, job_id)


def _fetch(
    job: Job,
    now: str,
    running_since: str,
    *,
    store: FetchStorePort,
    fetcher: FetchPort,
    finalizer: FinalizerPort,
    max_bytes: int,
) -> str:
    assert job.source_url is not None
    if store.start_fetch(job.id, now, running_since=running_since) is None:
        # Both deliveries read the job before either started: the one that lost the race leaves it to the other.
        current = store.get_job(job.id)
        if current is not None and current.status == JobStatus.QUEUED:
            logger.info("fetch skipped: another delivery is fetching it", job_id=job.id)
            return "running"
        logger.info("fetch skipped: the job is no longer queued", job_id=job.id)
        return "skipped"
    host = urlsplit(job.source_url).hostname
    try:
        size = fetcher.fetch(job.source_url, job.source_key, max_bytes=max_bytes)
    except FetchError as exc:
        logger.info("fetch failed", job_id=job.id, host=host, error=exc.code, reason=exc.message)
        failed = store.set_status(
            job.id, JobStatus.FAILED, only_from=("queued",), now=utcnow(), error=exc.code, error_message=exc.message
        )
        if failed is not None:
            finalizer.start(job.id)
        return exc.code
    store.finish_fetch(job.id, utcnow())
    logger.info("fetched", job_id=job.id, host=host, bytes=size)
    return "fetched"
