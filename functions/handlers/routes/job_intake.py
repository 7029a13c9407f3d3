"""Creating a job: from a file in a multipart form, a presigned upload, or a URL; and previewing one from a form."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header
from pydantic import ValidationError

from functions.adapters import idempotency
from functions.errors import InputError, PayloadTooLargeError
from functions.handlers.routes.deps import Deps, account, body_bytes, deps, json_answer
from functions.http.access import header
from functions.http.answers import request_id_from_event
from functions.http.error_mapping import validation_error
from functions.http.multipart import FORM, PREVIEW_FORM, Upload, parse_multipart
from functions.http.resolver import RequestRouter
from functions.http.route_facts import BODY_CODES, IDEMPOTENCY_CODES, declares
from functions.logic import job_views
from functions.models import Job, JobCreatedResponse, JobCreateRequest, JobPreviewResponse
from functions.observability import logger, metrics

# The logic modules load at the first request that needs them, not with the function (bench/coldstart.py: they
# are ~30 ms of the api's import; a health check, a key check or a webhook call never needs them).
if TYPE_CHECKING:
    from functions.logic import jobs

router = RequestRouter()

# A job created without its file names it (or its URL) in a small JSON body.
JSON_BODY_MAX = 64 * 1024
IDEMPOTENCY_KEY_MAX = idempotency.MAX_KEY_LENGTH
# What the form (a job's or a preview's) can be refused with: the form itself, then the file it carries.
FILE_CODES = (
    "invalid_content_type",
    "invalid_multipart",
    "missing_file",
    "missing_type",
    "duplicate_field",
    "invalid_parameter",
    "unsupported_type",
    "empty_file",
    "no_rows",
    "not_csv",
    "malformed_csv",
    "column_not_found",
    "too_many_rows",
    "too_many_columns",
    "row_too_large",
    "unsupported_format",
    "invalid_archive",
    "archive_has_several_files",
    "encrypted_file",
    "incomplete_archive",
    "sheet_not_found",
    "insufficient_credits",
    "file_too_large",
    *BODY_CODES,
)
# The job's form, or the same route without the file (JSON).
CREATE_FORM: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": FORM,
        # The same route without the file: a presigned upload (`filename`) or a URL to fetch (`url`).
        "application/json": {
            "schema": {"$ref": "#/components/schemas/JobCreateRequest"},
            "examples": {
                "upload": {
                    "summary": "a presigned upload (201)",
                    "value": {"type": "email", "filename": "leads.csv"},
                },
                "url": {
                    "summary": "a file the service fetches (202)",
                    "value": {"type": "email", "url": "https://example.com/leads.csv"},
                },
            },
        },
    },
}


def _job_form() -> tuple[Upload, str, str | None, jobs.PhoneOptions]:
    """The job creation form (also the preview's): the upload, its `type`, optional `column` and phone options."""
    from functions.logic import jobs

    settings = deps().settings
    content_type = header(router.current_event.headers, "content-type") or ""
    body = body_bytes()
    if len(body) > settings.max_upload_bytes + 64 * 1024:
        raise PayloadTooLargeError(
            f"the request is larger than {settings.max_upload_bytes} bytes", max_bytes=settings.max_upload_bytes
        )
    upload = parse_multipart(content_type, body)
    if upload.file is None:
        raise InputError("the `file` field is missing", code="missing_file")
    job_type = upload.fields.get("type", "")
    if not job_type:
        raise InputError("the `type` field is required", code="missing_type")
    options = jobs.check_phone_options(
        job_type.strip().lower(), upload.fields.get("country"), upload.fields.get("country_column")
    )
    return upload, job_type, upload.fields.get("column") or None, options


def _file_size(value: str | None) -> int | None:
    """The preview form's `file_size`: the whole file's size when `file` is its head."""
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise InputError("`file_size` must be a whole number of bytes", code="invalid_parameter", parameter="file_size")
    return int(value)


@router.post(
    "/api/bulk-jobs/preview",
    summary="Preview a job from a file (multipart), or from the head of a larger one; creates nothing",
    description="The form of `POST /api/bulk-jobs` (`file`, `type`, optional `column`, `sheet`). A file larger than "
    "the form takes (4 MiB) is previewed from its head: send its first 1 MiB as `file` and its whole size as "
    "`file_size`; the answer says `truncated: true`, counts the head's rows and estimates the file's. A ZIP or XLSX "
    "file cannot be read from its head (its directory is at its end): send it whole, or create the job directly.",
    tags=["jobs"],
)
@declares(body="form", errors=FILE_CODES, request_body=PREVIEW_FORM)
def preview_job() -> Response[JobPreviewResponse]:
    """What creating a job from this form would detect, count and charge, with its first rows; creates nothing."""
    from functions.logic import preview

    p = deps()
    settings = p.settings
    upload, job_type, column, options = _job_form()
    answer = preview.preview(
        account_id=account(),
        job_type=job_type,
        body=upload.file or b"",
        column=column,
        options=options,
        max_rows=settings.max_rows_per_job,
        max_bytes=settings.max_upload_bytes,
        credits=p.credits,
        file_size=_file_size(upload.fields.get("file_size")),
        sheet=upload.fields.get("sheet") or None,
        max_file_bytes=settings.max_file_bytes,
    )
    return json_answer(200, {"filename": upload.filename, **answer})


@router.post(
    "/api/bulk-jobs",
    summary="Create a job: a CSV in a form, a presigned upload, or a URL",
    description="`multipart/form-data` with the file (at most 4 MiB), answered 202. `application/json` without it: "
    "`filename` answers 201 with `upload`, a presigned S3 form to send the file to (up to the upload-object limit); "
    "`url` answers 202 and the service fetches the file itself.",
    tags=["jobs"],
)
@declares(
    body="form",
    errors=(*FILE_CODES, *IDEMPOTENCY_CODES, "invalid_body", "missing_parameter"),
    success=202,
    also={201: "a job waiting for its file: send it with the presigned form in `upload`"},
    request_body=CREATE_FORM,
)
def create_job(
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=IDEMPOTENCY_KEY_MAX)
    ] = None,
) -> Response[JobCreatedResponse]:
    """Create an async job: from an uploaded CSV (multipart), or waiting for its file (JSON)."""
    from functions.logic import jobs

    p = deps()
    settings = p.settings
    content_type = header(router.current_event.headers, "content-type") or ""
    if content_type.split(";")[0].strip().lower() == "application/json":
        body = body_bytes()
        if len(body) > JSON_BODY_MAX:
            raise PayloadTooLargeError(
                f"a job's JSON body is at most {JSON_BODY_MAX} bytes", code="request_too_large", max_bytes=JSON_BODY_MAX
            )
        return _create_without_file(body, idempotency_key, p)
    upload, job_type, column, options = _job_form()
    if "file_size" in upload.fields:
        raise InputError(
            "`file_size` goes with a preview of a file's head; a job takes the whole file",
            code="unknown_parameter",
            parameter="file_size",
        )
    sheet = upload.fields.get("sheet") or None

    def create() -> dict[str, Any]:
        job = jobs.create_job(
            account_id=account(),
            job_type=job_type,
            filename=upload.filename,
            body=upload.file or b"",
            column=column,
            sheet=sheet,
            max_rows=settings.max_rows_per_job,
            max_bytes=settings.max_upload_bytes,
            max_file_bytes=settings.max_file_bytes,
            store=p.store,
            credits=p.credits,
            blobs=p.blobs,
            request_id=request_id_from_event(router.current_event.raw_event),
            options=options,
        )
        return _created(job, "job created")

    if not idempotency_key:
        return json_answer(202, create())
    fingerprint = idempotency.fingerprint(
        upload.file,
        job_type,
        column or "",
        *([sheet] if sheet else []),
        *(o for o in (options.country, options.country_column) if o),
    )
    return json_answer(202, p.idempotency.once(account(), idempotency_key, fingerprint, create, router.lambda_context))


def parse_create_request(body: bytes) -> JobCreateRequest:
    """The JSON body of a job without its file; 400 with the field's code when it is not one."""
    try:
        request = JobCreateRequest.model_validate_json(body or b"{}")
    except ValidationError as exc:
        raise validation_error([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from exc
    if request.filename is None and request.url is None:
        raise InputError(
            "give `filename` (to upload the file through a presigned form) or `url` (to have it fetched)",
            code="missing_parameter",
            parameter="filename",
        )
    if request.filename is not None and request.url is not None:
        raise InputError("give either `filename` or `url`, not both", code="invalid_parameter", parameter="url")
    return request


def _created(job: Job, message: str, upload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Count and log a new job; its creation answer."""
    metrics.add_metric(name="JobsCreated", unit="Count", value=1)
    logger.info(message, job_id=job.id, rows=job.total_rows, type=job.type)
    return job_views.create_view(job, upload)


def _create_without_file(body: bytes, idempotency_key: str | None, p: Deps) -> Response[Any]:
    from functions.logic import fetching, jobs

    request = parse_create_request(body)
    settings = p.settings
    options = jobs.check_phone_options(request.type.strip().lower(), request.country, request.country_column)

    def create() -> dict[str, Any]:
        if request.url is not None:
            job = fetching.create_remote_job(
                account_id=account(),
                job_type=request.type,
                url=request.url,
                column=request.column,
                sheet=request.sheet,
                allow_http=settings.allow_private_targets,
                store=p.store,
                queue=p.fetches,
                options=options,
            )
            return _created(job, "job created, its file to be fetched")
        job, form = jobs.create_upload_job(
            account_id=account(),
            job_type=request.type,
            filename=request.filename or "",
            column=request.column,
            sheet=request.sheet,
            max_object_bytes=settings.max_upload_object_bytes,
            ttl_seconds=settings.upload_url_ttl_seconds,
            store=p.store,
            blobs=p.blobs,
            options=options,
        )
        return _created(job, "job created, awaiting its upload", upload=form)

    # 201: a job waiting for the client's upload; 202: work under way (the fetch), as for a form upload.
    status = 202 if request.url is not None else 201
    if not idempotency_key:
        return json_answer(status, create())
    sheet = [request.sheet] if request.sheet else []
    fingerprint = idempotency.fingerprint(
        "json",
        request.type,
        request.filename,
        request.url,
        request.column or "",
        *sheet,
        *(o for o in (options.country, options.country_column) if o),
    )
    return json_answer(
        status, p.idempotency.once(account(), idempotency_key, fingerprint, create, router.lambda_context)
    )
