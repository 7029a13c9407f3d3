"""A job once created: its status (or the account's jobs), cancelling or purging it, and downloading its result."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.errors import InputError
from functions.handlers.routes.deps import CURSOR_MAX, account, deps, json_answer
from functions.http.access import header
from functions.http.resolver import RequestRouter
from functions.http.route_facts import declares
from functions.logic import job_views
from functions.models import ID_MAX, JobDeletedResponse, JobListResponse, JobStatus, JobStatusResponse

# The logic modules load at the first request that needs them, not with the function (bench/coldstart.py: they
# are ~30 ms of the api's import; a health check, a key check or a webhook call never needs them).
router = RequestRouter()

# A Lambda proxy response carries at most 6 MB, base64-encoded: larger results are fetched from S3 directly.
INLINE_DOWNLOAD_MAX = 4 * 1024 * 1024

JobId = Annotated[str, Query(min_length=1, max_length=ID_MAX, description="the job's id")]


@router.get("/api/bulk-jobs", summary="One job's status (`id`), or the account's jobs", tags=["jobs"])
@declares(errors=("invalid_parameter", "invalid_cursor", "job_not_found"))
def get_job(
    id: Annotated[str | None, Query(min_length=1, max_length=ID_MAX, description="a job's id")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="jobs per page (ignored with `id`)")] = 20,
    cursor: Annotated[str | None, Query(max_length=CURSOR_MAX, description="`next_cursor` of the last page")] = None,
    status: Annotated[JobStatus | None, Query(description="only jobs in this status")] = None,
) -> Response[JobStatusResponse | JobListResponse]:
    """Status and progress of one job (`id`), or the account's jobs newest first (`limit`, `cursor`, `status`)."""
    from functions.logic import downloads, jobs

    if id is not None:
        # `limit` is documented with a default, which generated clients always send: it goes with `id`, ignored.
        given = set(router.current_event.multi_value_query_string_parameters or {}) - {"id", "limit"}
        if given:
            name = sorted(given)[0]
            raise InputError(f"`{name}` does not go with `id`", code="unknown_parameter", parameter=name)
        p = deps()
        retention = p.settings.retention_days
        job = jobs.get_job_for(p.store, account(), id)
        now = datetime.now(UTC)
        present = downloads.result_present(job, p.blobs, now, retention)
        view = job_views.status_view(job, now, retention_days=retention, result_present=present)
        # Variants are asked for once the job has ended: the polls of a running job need not look for any.
        records = p.store.variants(job.id) if job.result_key and job.status.is_terminal else []
        view["variants"] = downloads.variants_view(job, records, view["result_ready"])
        return json_answer(200, view)
    p = deps()
    page, next_key = p.store.list_jobs(
        account(),
        limit=limit,
        cursor=jobs.decode_cursor(cursor or "", account()),
        status=status.value if status else None,
    )
    retention = p.settings.retention_days
    views = [job_views.status_view(j, retention_days=retention) for j in page]
    return json_answer(200, {"jobs": views, "next_cursor": jobs.encode_cursor(next_key)})


@router.delete(
    "/api/bulk-jobs",
    summary="Cancel a running job; with `purge=true`, purge an ended one",
    description="Without `purge`: a `queued` or `processing` job is cancelled (the rows already processed are kept "
    "and assembled into its result); a job that has already ended answers 409 `job_finished` and nothing changes "
    "(a job already cancelled answers its status). With `purge=true`: an ended job's upload, parts, result and "
    "variants are deleted and its items with them (its ledger entries stay); a job that has not ended, or whose "
    "unused credits are still being refunded, answers 409 `job_not_finished`.",
    tags=["jobs"],
)
@declares(errors=("invalid_parameter", "missing_parameter", "job_not_found", "job_finished"))
def cancel_job(
    id: JobId,
    purge: Annotated[
        bool, Query(description="true: purge an ended job (its files and items) instead of cancelling")
    ] = False,
) -> Response[JobStatusResponse | JobDeletedResponse]:
    """Cancel a running job (rows already processed are kept); with `purge=true`, purge an ended one."""
    from functions.logic import jobs
    from functions.logic import purge as purging

    p = deps()
    if purge:
        purging.purge_job(p.store, p.blobs, account(), id)
        return json_answer(200, {"id": id, "status": "deleted"})
    job = jobs.cancel_job(p.store, p.finalizer, account(), id)
    return json_answer(200, job_views.status_view(job, retention_days=p.settings.retention_days))


@router.get(
    "/api/bulk-jobs/download",
    summary="Download the result, or a variant of it",
    tags=["jobs"],
    responses={
        200: {
            "description": "the result (CSV) or a variant (CSV, JSON Lines); with `Accept: application/json` only, a "
            "link to the file instead",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": "with `Accept: application/json`: a short-lived link to the file",
                        "properties": {"url": {"type": "string"}, "filename": {"type": "string"}},
                        "required": ["url", "filename"],
                    }
                },
            },
        },
        202: {"description": "the variant is being built: ask again after `Retry-After` seconds"},
        303: {"description": "a large file: follow `Location` (a short-lived S3 URL)"},
    },
)
@declares(
    errors=(
        "invalid_parameter",
        "missing_parameter",
        "job_not_found",
        "job_not_finished",
        "job_failed",
        "result_expired",
    )
)
def download(
    id: JobId,
    status: Annotated[
        str | None,
        Query(max_length=64, description="only rows with these statuses: comma-separated ok, invalid, error"),
    ] = None,
    format: Annotated[
        str | None,
        Query(max_length=16, description="csv (default), jsonl, or xlsx (a workbook, always by link: 303 or `url`)"),
    ] = None,
    delimiter: Annotated[
        str | None, Query(max_length=16, description="comma, semicolon, tab or pipe; default: the upload's")
    ] = None,
    validity: Annotated[
        str | None,
        Query(
            max_length=64,
            description="email jobs: only rows with these verdicts, comma-separated valid, risky, invalid, unknown "
            "(an `error` row is unknown); the file is named after them (`leads.enriched.valid.csv`)",
        ),
    ] = None,
    formula_guard: Annotated[
        str | None,
        Query(
            max_length=8,
            description="CSV: on (default) puts `'` before cells a spreadsheet could run as formulas (README says "
            "which); off gives every cell exactly as uploaded",
        ),
    ] = None,
) -> Response[Any]:
    """The result or a variant of it: inline when small, else a redirect to a short-lived S3 URL; 202 with
    Retry-After while a variant is being built; 410 once the result has expired."""
    from functions.logic import downloads, jobs, variants

    p = deps()
    settings = p.settings
    job = jobs.get_job_for(p.store, account(), id)
    variant = variants.parse(job, status, format, delimiter, validity, formula_guard)
    # `Accept: application/json` asks for a link instead of the file (a page cannot follow a redirect with its
    # key, nor read a cross-origin download): 200 {"url", "filename"}, whatever the size.
    link_only = (header(router.current_event.headers, "accept") or "").startswith("application/json")
    outcome = downloads.download(
        job,
        variant,
        store=p.store,
        blobs=p.blobs,
        queue=p.variant_queue,
        now=datetime.now(UTC),
        retention_days=settings.retention_days,
        inline_max=-1 if link_only else INLINE_DOWNLOAD_MAX,
        url_ttl_seconds=settings.download_url_ttl_seconds,
    )
    if isinstance(outcome, downloads.Pending):
        body = {"id": job.id, "variant": outcome.variant, "ready": False, "retry_after": outcome.retry_after}
        return json_answer(202, body, {"Retry-After": str(outcome.retry_after)})
    if outcome.url is not None and link_only:
        return json_answer(200, {"url": outcome.url, "filename": outcome.filename})
    if outcome.url is not None:
        return Response(
            status_code=303,
            content_type="application/json",
            headers={"Location": outcome.url},
            body=json.dumps({"url": outcome.url}),
        )
    return Response(
        status_code=200,
        content_type=outcome.content_type,
        body=outcome.body,
        headers={"Content-Disposition": outcome.disposition},
    )
