"""The REST API: bulk jobs (create, status, download, cancel), credits, webhooks, health and the API's own contract.

Thin: Powertools' resolver validates typed, bounded parameters and bodies (`enable_validation=True`), then each route
calls logic and shapes the answer. The key check, error body, request id and CORS come from `functions.frontdoor`,
which the stream function uses too. The OpenAPI document is generated from these routes (`functions/handlers/
contract.py`).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
    ResponseValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from functions import authorizer_context, frontdoor
from functions.adapters import idempotency
from functions.adapters.accounts import AccountStore
from functions.adapters.blobs import BlobStore
from functions.adapters.credits import CreditStore
from functions.adapters.jobs import JobStore
from functions.adapters.messaging import FetchQueue, FinalizerStarter, WorkQueue
from functions.adapters.webhook_http import WebhookHttp
from functions.adapters.webhooks import WebhookStore
from functions.composition import Function, Handler
from functions.errors import (
    BulkApiError,
    InputError,
    MethodNotAllowedError,
    PayloadTooLargeError,
    RouteNotFoundError,
    UnsupportedMediaTypeError,
)
from functions.handlers import contract
from functions.logic import downloads, fetching, jobs, ledger, preview, variants
from functions.logic import purge as purging
from functions.logic import webhook_endpoints as hooks
from functions.logic.function_ports import ApiBlobPort, ApiCreditPort, ApiJobStorePort, JobReplayPort
from functions.logic.ports import BuildQueuePort, EndpointStorePort, FetchRequestPort, FinalizerPort, TargetPort
from functions.models import (
    ID_MAX,
    CreditsResponse,
    DeliveriesResponse,
    HealthResponse,
    Job,
    JobCreatedResponse,
    JobCreateRequest,
    JobDeletedResponse,
    JobListResponse,
    JobPreviewResponse,
    JobStatus,
    JobStatusResponse,
    WebhookCreatedResponse,
    WebhookCreateRequest,
    WebhookDeletedResponse,
    WebhookIdRequest,
    WebhookListResponse,
    WebhookResponse,
    WebhookTestResponse,
    WebhookUpdateRequest,
)
from functions.observability import logger, metrics, tracer
from functions.settings import ApiSettings


class RequestResolver(APIGatewayRestResolver):
    """The Powertools REST resolver, keeping the request it resolves on itself.

    Powertools stores the current event and context on its BaseRouter class, shared by every resolver in the
    process. Deployed, Lambda runs one event per process at a time, so that is harmless; the local runtime serves
    requests side by side on threads (one resolver per execution environment, local/lambdas.py), where the shared
    class attribute handed one request another's event (its query string and key).
    """

    _request_event: BaseProxyEvent
    _request_context: LambdaContext

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        """Resolve one event (remembering it here, not only on the shared class)."""
        self._request_event = self._to_proxy_event(dict(event))
        self._request_context = context
        return super().resolve(event, context)

    @property  # type: ignore[override]
    def current_event(self) -> BaseProxyEvent:
        """The event being resolved by this resolver."""
        return self._request_event

    @current_event.setter
    def current_event(self, value: BaseProxyEvent) -> None:
        self._request_event = value

    @property
    def lambda_context(self) -> LambdaContext:
        """The context of the event being resolved by this resolver."""
        return self._request_context

    @lambda_context.setter
    def lambda_context(self, value: LambdaContext) -> None:
        self._request_context = value


# A response that breaks its own model is our defect: 500, not Powertools' default of reporting it as a request error.
app = RequestResolver(enable_validation=True, response_validation_error_http_code=500)
# A Lambda proxy response carries at most 6 MB, base64-encoded: larger results are fetched from S3 directly.
INLINE_DOWNLOAD_MAX = 4 * 1024 * 1024
FILENAME_MAX = 255
# A job created without its file names it (or its URL) in a small JSON body.
JSON_BODY_MAX = 64 * 1024
CURSOR_MAX = 1024
LEDGER_PAGE_MAX = 1000
IDEMPOTENCY_KEY_MAX = idempotency.MAX_KEY_LENGTH
# The fields of the multipart form that creates a job.
FORM_FIELDS = frozenset({"file", "type", "column", "sheet", "file_size", "country", "country_column"})
# A body field whose validation failure has a code of its own.
FIELD_CODES = {"url": "invalid_webhook_url", "events": "invalid_events"}

JobId = Annotated[str, Query(min_length=1, max_length=ID_MAX, description="the job's id")]


CONSOLE_PAGE = Path(__file__).resolve().parents[1] / "console" / "index.html"


@dataclass(frozen=True)
class Deps:
    """What the API needs, built once per cold start from its settings; tests pass fakes."""

    settings: ApiSettings
    store: ApiJobStorePort
    credits: ApiCreditPort
    blobs: ApiBlobPort
    finalizer: FinalizerPort
    variant_queue: BuildQueuePort
    fetches: FetchRequestPort
    webhooks: EndpointStorePort
    targets: TargetPort
    keys: frontdoor.KeyCheck
    idempotency: JobReplayPort
    console_html: str = ""

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> Deps:
        """The real adapters (their boto3 clients are built here, with the first event, not at import)."""
        return cls(
            settings=settings,
            store=JobStore(settings.jobs_table),
            credits=CreditStore(settings.jobs_table),
            blobs=BlobStore(settings.bucket),
            finalizer=FinalizerStarter(settings.finalizer_arn),
            variant_queue=WorkQueue(settings.variant_queue_url),
            fetches=FetchQueue(settings.fetch_queue_url),
            webhooks=WebhookStore(settings.jobs_table),
            targets=WebhookHttp(allow_private=settings.allow_private_targets, timeout=10.0),
            keys=frontdoor.KeyCheck(AccountStore(settings.jobs_table).account_for_key, settings.key_cache_seconds),
            idempotency=idempotency.JobIdempotency(settings.jobs_table),
            console_html=CONSOLE_PAGE.read_text(encoding="utf-8"),
        )


def _deps() -> Deps:
    """The dependencies of the event being resolved (put in the resolver's context by the handler)."""
    deps: Deps = app.context["deps"]
    return deps


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


def _error(exc: BulkApiError) -> Response[Any]:
    status, body, headers = frontdoor.error_answer(exc)
    return Response(status_code=status, content_type="application/json", body=json.dumps(body), headers=headers)


def reject_unknown_parameters(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """A query parameter the route does not take is an error, never silently ignored."""
    route = app.context.get("_route")
    if route is None or route.func.__name__ == "not_found_handler":
        return next_middleware(app)  # no route matched: the not-found handler answers (404, or 405 for a known path)
    known = {p.alias for p in route.dependant.query_params}
    given = (app.current_event.multi_value_query_string_parameters or {}).keys()
    unknown = sorted(set(given) - known)
    if unknown:
        raise InputError(
            f"unknown query parameter `{unknown[0]}`"
            + (f"; this route takes {', '.join(sorted(known))}" if known else ""),
            code="unknown_parameter",
            parameter=unknown[0],
        )
    return next_middleware(app)


app.use(middlewares=[reject_unknown_parameters])


@app.exception_handler(BulkApiError)  # type: ignore[untyped-decorator]
def handle_api_error(exc: BulkApiError) -> Response[Any]:
    """Our errors carry their HTTP status and a machine-readable code."""
    if exc.status_code >= 500:
        logger.exception("request failed", error=exc.code)
    return _error(exc)


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def handle_validation_error(exc: RequestValidationError) -> Response[Any]:
    """A parameter or body field the route's types refuse: 400 naming it."""
    return _error(validation_error(exc.errors()))


def validation_error(errors: Any) -> InputError:
    """The first of pydantic's errors as our own error (`invalid_parameter`, `unknown_parameter`, ...)."""
    first = dict(errors[0]) if errors else {}
    loc = [str(part) for part in first.get("loc", ())]
    where, name = (loc[0] if loc else "body"), ".".join(loc[1:2])
    kind = str(first.get("type", ""))
    text = str(first.get("msg", "not valid"))
    if where == "body" and (kind in ("json_invalid", "model_attributes_type", "dict_type") or not name):
        return InputError("the body must be a JSON object with the documented fields", code="invalid_body")
    if kind == "extra_forbidden":
        return InputError(f"unknown field `{name}`", code="unknown_parameter", parameter=name)
    if kind == "missing":
        return InputError(f"`{name}` is required", code="missing_parameter", parameter=name)
    code = FIELD_CODES.get(name, "invalid_parameter") if where == "body" else "invalid_parameter"
    if where == "header" and name.lower() == "idempotency-key":
        code, name = "invalid_idempotency_key", "Idempotency-Key"
    return InputError(f"`{name}`: {text}", code=code, parameter=name)


@app.exception_handler(ResponseValidationError)  # type: ignore[untyped-decorator]
def handle_response_validation_error(exc: ResponseValidationError) -> Response[Any]:
    """An answer that does not match its documented model: logged, answered as our error."""
    logger.error("response does not match its model", errors=str(exc.errors())[:1000])
    return _error(BulkApiError("something went wrong on our side; the request id identifies it"))


@app.exception_handler(RequestUnsupportedContentType)  # type: ignore[untyped-decorator]
def handle_unsupported_content_type(exc: RequestUnsupportedContentType) -> Response[Any]:
    """A JSON route sent another media type."""
    return _error(
        UnsupportedMediaTypeError(
            "send the body as JSON with `Content-Type: application/json`", code="unsupported_media_type"
        )
    )


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]
def handle_unexpected(exc: Exception) -> Response[Any]:
    """Anything else is our fault: logged in full, answered without internals."""
    logger.exception("unexpected error")
    return _error(BulkApiError("something went wrong on our side; the request id identifies it"))


@app.not_found
def handle_not_found(_: Exception) -> Response[Any]:
    """Unknown routes answer in the same error shape as everything else."""
    event = app.current_event
    path = event.path.rstrip("/") or "/"
    allowed = sorted({route.method.upper() for route in app._static_routes if route.path == path})
    if path in contract.STREAM_ROUTES:
        allowed = ["POST"]
    if allowed:
        answer = _error(MethodNotAllowedError(f"{path} takes {', '.join(allowed)}", allowed=allowed))
        answer.headers["Allow"] = ", ".join(allowed)
        return answer
    return _error(RouteNotFoundError(f"no route {event.http_method} {event.path}"))


def _account() -> str:
    return str(app.context["account_id"])


@dataclass
class Upload:
    """The fields of a multipart job creation request."""

    fields: dict[str, str]
    file: bytes | None
    filename: str


def parse_multipart(content_type: str, body: bytes) -> Upload:
    """Parse multipart/form-data with the standard library's MIME parser (no extra dependency).

    Hand-parsed rather than through Powertools' `File`/`Form`: the size limit is checked before any parsing, and a
    missing, repeated or unknown field gets the project's own codes, which a generic validation error cannot give.
    """
    if not content_type.lower().startswith("multipart/form-data"):
        raise InputError("send the file as multipart/form-data with a `file` field", code="invalid_content_type")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise InputError("the multipart body could not be parsed", code="invalid_multipart")
    fields: dict[str, str] = {}
    file: bytes | None = None
    filename = ""
    seen: set[str] = set()
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        if name not in FORM_FIELDS:
            raise InputError(
                f"unknown form field `{name}`; the form takes {', '.join(sorted(FORM_FIELDS))}",
                code="unknown_parameter",
                parameter=name,
            )
        if name in seen:
            # Which of two files (or types) the caller meant cannot be guessed; using one silently would be a loss.
            raise InputError(f"the form has more than one `{name}` field", code="duplicate_field", field=name)
        seen.add(name)
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if name == "file":
            file = data
            filename = part.get_filename() or "upload.csv"
            if len(filename) > FILENAME_MAX:
                raise InputError(
                    f"the file name is longer than {FILENAME_MAX} characters",
                    code="invalid_parameter",
                    parameter="filename",
                )
        else:
            value = data.decode("utf-8", errors="replace").strip()
            if len(value) > FILENAME_MAX:
                raise InputError(
                    f"`{name}` is longer than {FILENAME_MAX} characters", code="invalid_parameter", parameter=name
                )
            fields[name] = value
    return Upload(fields, file, filename)


def _body_bytes() -> bytes:
    event = app.current_event
    raw = event.body or ""
    return base64.b64decode(raw) if event.is_base64_encoded else raw.encode("utf-8")


ERRORS_400 = {"description": "a parameter or field is not valid", "model": "ErrorResponse"}


@app.get("/api/health", summary="Readiness (no key)", tags=["service"])
def health() -> Response[HealthResponse]:
    """Liveness: answers without a key."""
    return _json(200, HealthResponse(status="ok"))


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI document of this API (built once per process; `bulkapi openapi` prints it)."""
    return contract.build(app)


@app.get("/api/openapi.json", summary="This document (no key)", tags=["service"])
def openapi_document() -> Response[dict[str, Any]]:
    """The OpenAPI 3.1 document of this API."""
    return _json(200, document())


@app.get(
    "/api/docs",
    summary="The document as a page (no key)",
    tags=["service"],
    responses={200: {"description": "an HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}},
)
def docs_page() -> Response[str]:
    """Swagger UI on the document."""
    return Response(
        status_code=200,
        content_type="text/html; charset=utf-8",
        body=contract.swagger_page(document()),
        # The page shares the console's origin, whose sessionStorage holds the key: the same policy, no framing.
        headers={"Content-Security-Policy": CONSOLE_POLICY},
    )


# The page runs its own inline script and calls this API (and, for a presigned upload or a large download, storage).
CONSOLE_POLICY = (
    "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' https: http:; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@app.get(
    "/console",
    summary="The web console (no key: it asks for one)",
    tags=["service"],
    responses={200: {"description": "an HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}},
)
def console_page() -> Response[str]:
    """Upload, preview, start and watch jobs; the ledger; webhooks. One static page, no build step."""
    return Response(
        status_code=200,
        content_type="text/html; charset=utf-8",
        body=_deps().console_html,
        headers={"Content-Security-Policy": CONSOLE_POLICY, "Cache-Control": "no-cache"},
    )


@app.get(
    "/",
    summary="The service's root: a redirect to the web console (no key)",
    tags=["service"],
    responses={
        302: {
            "description": "`Location` is the console's address",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def root_page() -> Response[str]:
    """`/` sends a browser to the console (a 302, no key needed)."""
    # On an execute-api host the stage is the first part of the path (`/prod/console`); behind a custom domain or
    # locally there is no stage in the URL.
    host = frontdoor.header(app.current_event.headers, "host") or ""
    stage = str((app.current_event.raw_event.get("requestContext") or {}).get("stage") or "")
    prefix = f"/{stage}" if stage and host.endswith(".amazonaws.com") else ""
    return Response(
        status_code=302,
        content_type="text/plain; charset=utf-8",
        body="the console is at /console\n",
        headers={"Location": f"{prefix}/console"},
    )


def _job_form() -> tuple[Upload, str, str | None, jobs.PhoneOptions]:
    """The job creation form (also the preview's): the upload, its `type`, optional `column` and phone options."""
    settings = _deps().settings
    content_type = frontdoor.header(app.current_event.headers, "content-type") or ""
    body = _body_bytes()
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


@app.post(
    "/api/bulk-jobs/preview",
    summary="Preview a job from a file (multipart), or from the head of a larger one; creates nothing",
    description="The form of `POST /api/bulk-jobs` (`file`, `type`, optional `column`, `sheet`). A file larger than "
    "the form takes (4 MiB) is previewed from its head: send its first 1 MiB as `file` and its whole size as "
    "`file_size`; the answer says `truncated: true`, counts the head's rows and estimates the file's. A ZIP or XLSX "
    "file cannot be read from its head (its directory is at its end): send it whole, or create the job directly.",
    tags=["jobs"],
)
def preview_job() -> Response[JobPreviewResponse]:
    """What creating a job from this form would detect, count and charge, with its first rows; creates nothing."""
    deps = _deps()
    settings = deps.settings
    upload, job_type, column, options = _job_form()
    answer = preview.preview(
        account_id=_account(),
        job_type=job_type,
        body=upload.file or b"",
        column=column,
        options=options,
        max_rows=settings.max_rows_per_job,
        max_bytes=settings.max_upload_bytes,
        credits=deps.credits,
        file_size=_file_size(upload.fields.get("file_size")),
        sheet=upload.fields.get("sheet") or None,
        max_file_bytes=settings.max_file_bytes,
    )
    return _json(200, {"filename": upload.filename, **answer})


@app.post(
    "/api/bulk-jobs",
    summary="Create a job: a CSV in a form, a presigned upload, or a URL",
    description="`multipart/form-data` with the file (at most 4 MiB), answered 202. `application/json` without it: "
    "`filename` answers 201 with `upload`, a presigned S3 form to send the file to (up to the upload-object limit); "
    "`url` answers 202 and the service fetches the file itself.",
    tags=["jobs"],
)
def create_job(
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=IDEMPOTENCY_KEY_MAX)
    ] = None,
) -> Response[JobCreatedResponse]:
    """Create an async job: from an uploaded CSV (multipart), or waiting for its file (JSON)."""
    deps = _deps()
    settings = deps.settings
    content_type = frontdoor.header(app.current_event.headers, "content-type") or ""
    if content_type.split(";")[0].strip().lower() == "application/json":
        body = _body_bytes()
        if len(body) > JSON_BODY_MAX:
            raise PayloadTooLargeError(
                f"a job's JSON body is at most {JSON_BODY_MAX} bytes", code="request_too_large", max_bytes=JSON_BODY_MAX
            )
        return _create_without_file(body, idempotency_key, deps)
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
            account_id=_account(),
            job_type=job_type,
            filename=upload.filename,
            body=upload.file or b"",
            column=column,
            sheet=sheet,
            max_rows=settings.max_rows_per_job,
            max_bytes=settings.max_upload_bytes,
            max_file_bytes=settings.max_file_bytes,
            store=deps.store,
            credits=deps.credits,
            blobs=deps.blobs,
            request_id=frontdoor.request_id_from_event(app.current_event.raw_event),
            options=options,
        )
        return _created(job, "job created")

    if not idempotency_key:
        return _json(202, create())
    fingerprint = idempotency.fingerprint(
        upload.file,
        job_type,
        column or "",
        *([sheet] if sheet else []),
        *(o for o in (options.country, options.country_column) if o),
    )
    return _json(202, deps.idempotency.once(_account(), idempotency_key, fingerprint, create, app.lambda_context))


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
    return jobs.create_view(job, upload)


def _create_without_file(body: bytes, idempotency_key: str | None, deps: Deps) -> Response[Any]:
    request = parse_create_request(body)
    settings = deps.settings
    options = jobs.check_phone_options(request.type.strip().lower(), request.country, request.country_column)

    def create() -> dict[str, Any]:
        if request.url is not None:
            job = fetching.create_remote_job(
                account_id=_account(),
                job_type=request.type,
                url=request.url,
                column=request.column,
                sheet=request.sheet,
                allow_http=settings.allow_private_targets,
                store=deps.store,
                queue=deps.fetches,
                options=options,
            )
            return _created(job, "job created, its file to be fetched")
        job, form = jobs.create_upload_job(
            account_id=_account(),
            job_type=request.type,
            filename=request.filename or "",
            column=request.column,
            sheet=request.sheet,
            max_object_bytes=settings.max_upload_object_bytes,
            ttl_seconds=settings.upload_url_ttl_seconds,
            store=deps.store,
            blobs=deps.blobs,
            options=options,
        )
        return _created(job, "job created, awaiting its upload", upload=form)

    # 201: a job waiting for the client's upload; 202: work under way (the fetch), as for a form upload.
    status = 202 if request.url is not None else 201
    if not idempotency_key:
        return _json(status, create())
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
    return _json(status, deps.idempotency.once(_account(), idempotency_key, fingerprint, create, app.lambda_context))


@app.get("/api/bulk-jobs", summary="One job's status (`id`), or the account's jobs", tags=["jobs"])
def get_job(
    id: Annotated[str | None, Query(min_length=1, max_length=ID_MAX, description="a job's id")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="jobs per page (ignored with `id`)")] = 20,
    cursor: Annotated[str | None, Query(max_length=CURSOR_MAX, description="`next_cursor` of the last page")] = None,
    status: Annotated[JobStatus | None, Query(description="only jobs in this status")] = None,
) -> Response[JobStatusResponse | JobListResponse]:
    """Status and progress of one job (`id`), or the account's jobs newest first (`limit`, `cursor`, `status`)."""
    if id is not None:
        # `limit` is documented with a default, which generated clients always send: it goes with `id`, ignored.
        given = set(app.current_event.multi_value_query_string_parameters or {}) - {"id", "limit"}
        if given:
            name = sorted(given)[0]
            raise InputError(f"`{name}` does not go with `id`", code="unknown_parameter", parameter=name)
        p = _deps()
        retention = p.settings.retention_days
        job = jobs.get_job_for(p.store, _account(), id)
        now = datetime.now(UTC)
        present = downloads.result_present(job, p.blobs, now, retention)
        view = jobs.status_view(job, now, retention_days=retention, result_present=present)
        # Variants are asked for once the job has ended: the polls of a running job need not look for any.
        records = p.store.variants(job.id) if job.result_key and job.status.is_terminal else []
        view["variants"] = downloads.variants_view(job, records, view["result_ready"])
        return _json(200, view)
    deps = _deps()
    page, next_key = deps.store.list_jobs(
        _account(),
        limit=limit,
        cursor=jobs.decode_cursor(cursor or "", _account()),
        status=status.value if status else None,
    )
    retention = deps.settings.retention_days
    views = [jobs.status_view(j, retention_days=retention) for j in page]
    return _json(200, {"jobs": views, "next_cursor": jobs.encode_cursor(next_key)})


@app.get("/api/credits", summary="Balance and ledger, a page at a time", tags=["credits"])
def credits(
    limit: Annotated[int, Query(ge=1, le=LEDGER_PAGE_MAX, description="entries per page")] = 50,
    cursor: Annotated[str | None, Query(max_length=CURSOR_MAX, description="`next_cursor` of the last page")] = None,
) -> Response[CreditsResponse]:
    """The account's balance and its credit movements, newest first; follow `next_cursor` to read every entry."""
    return _json(200, ledger.page(_deps().credits, _account(), limit, cursor))


@app.delete(
    "/api/bulk-jobs",
    summary="Cancel a running job; with `purge=true`, purge an ended one",
    description="Without `purge`: a `queued` or `processing` job is cancelled (the rows already processed are kept "
    "and assembled into its result); a job that has already ended answers 409 `job_finished` and nothing changes "
    "(a job already cancelled answers its status). With `purge=true`: an ended job's upload, parts, result and "
    "variants are deleted and its items with them (its ledger entries stay); a job that has not ended, or whose "
    "unused credits are still being refunded, answers 409 `job_not_finished`.",
    tags=["jobs"],
)
def cancel_job(
    id: JobId,
    purge: Annotated[
        bool, Query(description="true: purge an ended job (its files and items) instead of cancelling")
    ] = False,
) -> Response[JobStatusResponse | JobDeletedResponse]:
    """Cancel a running job (rows already processed are kept); with `purge=true`, purge an ended one."""
    p = _deps()
    if purge:
        purging.purge_job(p.store, p.blobs, _account(), id)
        return _json(200, {"id": id, "status": "deleted"})
    job = jobs.cancel_job(p.store, p.finalizer, _account(), id)
    return _json(200, jobs.status_view(job, retention_days=p.settings.retention_days))


@app.get(
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
    p = _deps()
    settings = p.settings
    job = jobs.get_job_for(p.store, _account(), id)
    variant = variants.parse(job, status, format, delimiter, validity, formula_guard)
    # `Accept: application/json` asks for a link instead of the file (a page cannot follow a redirect with its
    # key, nor read a cross-origin download): 200 {"url", "filename"}, whatever the size.
    link_only = (frontdoor.header(app.current_event.headers, "accept") or "").startswith("application/json")
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
        return _json(202, body, {"Retry-After": str(outcome.retry_after)})
    if outcome.url is not None and link_only:
        return _json(200, {"url": outcome.url, "filename": outcome.filename})
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


@app.get("/api/webhooks", summary="List webhook endpoints", tags=["webhooks"])
def list_webhooks() -> Response[WebhookListResponse]:
    """The account's webhook endpoints (secrets are never shown again)."""
    return _json(200, {"webhooks": hooks.list_endpoints(_deps().webhooks, _account())})


@app.post("/api/webhooks", summary="Register a webhook endpoint", tags=["webhooks"])
def create_webhook(body: WebhookCreateRequest) -> Response[WebhookCreatedResponse]:
    """Register an endpoint; the answer carries its signing secret, this once."""
    created = hooks.create_endpoint(
        _deps().webhooks,
        _account(),
        body.model_dump(exclude_unset=True),
        targets=_deps().targets,
    )
    return _json(201, created)


@app.put("/api/webhooks", summary="Change a webhook endpoint", tags=["webhooks"])
def update_webhook(body: WebhookUpdateRequest) -> Response[WebhookResponse]:
    """Change url, events, description or is_active."""
    updated = hooks.update_endpoint(
        _deps().webhooks,
        _account(),
        body.model_dump(exclude_unset=True),
        targets=_deps().targets,
    )
    return _json(200, updated)


@app.delete("/api/webhooks", summary="Remove a webhook endpoint", tags=["webhooks"])
def delete_webhook(body: WebhookIdRequest) -> Response[WebhookDeletedResponse]:
    """Remove an endpoint and its delivery history (`{"id"}` in the JSON body, as the official clients send it)."""
    hooks.delete_endpoint(_deps().webhooks, _account(), body.id)
    return _json(200, {"id": body.id, "deleted": True})


@app.post("/api/webhooks/test", summary="Send a test event now", tags=["webhooks"])
def test_webhook(body: WebhookIdRequest) -> Response[WebhookTestResponse]:
    """Send a signed `webhook.test` event now and report what the endpoint answered."""
    result = hooks.send_test(_deps().webhooks, _account(), body.id, targets=_deps().targets)
    return _json(200, result)


@app.get("/api/webhooks/deliveries", summary="An endpoint's delivery log", tags=["webhooks"])
def webhook_deliveries(
    webhook_id: Annotated[str, Query(min_length=1, max_length=ID_MAX, description="the endpoint's id")],
) -> Response[DeliveriesResponse]:
    """The endpoint's last 50 delivery attempts."""
    return _json(200, {"deliveries": hooks.list_deliveries(_deps().webhooks, _account(), webhook_id)})


def _authenticate(event: dict[str, Any], keys: frontdoor.KeyCheck) -> dict[str, Any] | None:
    """The account of the request's key, put in the resolver's context; the 401 answer when there is none."""
    path = str(event.get("path") or "").rstrip("/") or "/"
    if path in frontdoor.PUBLIC_PATHS or event.get("httpMethod") == "OPTIONS":
        return None
    try:
        # API Gateway's authorizer checked the key already; the key check is for a request without its context.
        account_id = authorizer_context.account_from_event(event) or keys.account_for(event.get("headers"))
    except BulkApiError as exc:
        return _proxy_error(exc)
    app.append_context(account_id=account_id)  # type: ignore[no-untyped-call]
    logger.append_keys(account_id=account_id)
    return None


# The routes whose body is JSON (the job form is multipart and parsed by the route itself).
JSON_BODY_ROUTES = frozenset(
    {("POST", "/api/webhooks"), ("PUT", "/api/webhooks"), ("DELETE", "/api/webhooks"), ("POST", "/api/webhooks/test")}
)


def _refuse_unreadable_body(event: dict[str, Any]) -> dict[str, Any] | None:
    """A JSON route's body that is not JSON text: 415 for another media type, 400 for bytes that are not UTF-8.

    Checked before the resolver, whose validation would otherwise fail inside its own parsing.
    """
    route = (str(event.get("httpMethod") or ""), str(event.get("path") or "").rstrip("/"))
    if route not in JSON_BODY_ROUTES or not event.get("body"):
        return None
    media_type = (frontdoor.header(event.get("headers"), "content-type") or "application/json").split(";")[0]
    error: BulkApiError | None = None
    if media_type.strip().lower() != "application/json":
        error = UnsupportedMediaTypeError(
            "send the body as JSON with `Content-Type: application/json`", code="unsupported_media_type"
        )
    else:
        raw = str(event["body"])
        try:
            (base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()).decode("utf-8")
        except (ValueError, UnicodeError):
            error = InputError("the body must be JSON text in UTF-8", code="invalid_body")
    return _proxy_error(error) if error else None


def _proxy_error(exc: BulkApiError) -> dict[str, Any]:
    status, body, headers = frontdoor.error_answer(exc)
    return {
        "statusCode": status,
        "multiValueHeaders": {"Content-Type": ["application/json"], **{k: [v] for k, v in headers.items()}},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def handler_for(deps: Deps) -> Handler:
    """The API composed with its dependencies."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        # The key check first (before any parameter is looked at), then the route.
        app.append_context(deps=deps)  # type: ignore[no-untyped-call]
        try:
            response = _authenticate(event, deps.keys) or _refuse_unreadable_body(event) or app.resolve(event, context)
        finally:
            app.clear_context()  # type: ignore[no-untyped-call]
        extra = frontdoor.answer_headers(
            frontdoor.request_id_from_event(event),
            frontdoor.header(event.get("headers"), "origin"),
            deps.settings.cors_origins,
        )
        if "multiValueHeaders" in response:
            response["multiValueHeaders"].update({k: [v] for k, v in extra.items()})
        else:
            response.setdefault("headers", {}).update(extra)
        return response

    return handle


lambda_handler = Function(ApiSettings, Deps.from_settings, handler_for)
