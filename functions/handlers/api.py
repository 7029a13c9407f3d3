"""The REST API: bulk jobs (create, status, download, cancel) and health. Thin: parse, call logic, shape."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import cors, frontdoor
from functions.adapters import idempotency
from functions.adapters.blobs import BlobStore
from functions.adapters.jobs import JobStore, key_hash
from functions.adapters.messaging import Finalizer, WorkQueue
from functions.adapters.webhooks import WebhookStore
from functions.errors import BulkApiError, InputError, PayloadTooLargeError, UnauthorizedError
from functions.logic import downloads, jobs, preview, purge, variants
from functions.logic import endpoints as hooks
from functions.models import JobStatus
from functions.observability import logger, metrics, tracer
from functions.settings import ApiSettings, load

app = APIGatewayRestResolver()
# A Lambda proxy response carries at most 6 MB, base64-encoded: larger results are fetched from S3 directly.
INLINE_DOWNLOAD_MAX = 4 * 1024 * 1024


@dataclass
class Ports:
    """The adapters the routes use; built once per cold start, replaceable in tests."""

    store: JobStore
    blobs: BlobStore
    finalizer: Finalizer
    variant_queue: WorkQueue


_ports: Ports | None = None


def ports() -> Ports:
    """The adapters for this process, built from settings on first use."""
    global _ports
    if _ports is None:
        settings = load(ApiSettings)
        _ports = Ports(
            JobStore(settings.jobs_table),
            BlobStore(settings.bucket),
            Finalizer(settings.finalizer_arn),
            WorkQueue(settings.variant_queue_url),
        )
    return _ports


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[str]:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body), headers=headers)


_KEY_CACHE: dict[str, tuple[float, str | None]] = {}


def _account_for_key(key: str) -> str | None:
    """Key -> account, remembered per warm instance for key_cache_seconds (a revoked key stops within that)."""
    now = time.monotonic()
    cache_key = key_hash(key)
    hit = _KEY_CACHE.get(cache_key)
    if hit is not None and now - hit[0] < load(ApiSettings).key_cache_seconds and hit[1] is not None:
        return hit[1]
    account_id = ports().store.account_for_key(key)
    if len(_KEY_CACHE) > 1000:
        _KEY_CACHE.clear()
    _KEY_CACHE[cache_key] = (now, account_id)
    return account_id


def authenticate(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Every route but health needs `Authorization: Bearer <key>`; the account is put in the request context."""
    if app.current_event.path.rstrip("/") == "/api/health":
        return next_middleware(app)
    header = app.current_event.headers.get("Authorization") or app.current_event.headers.get("authorization") or ""
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise UnauthorizedError("send your API key as `Authorization: Bearer <key>`")
    account_id = _account_for_key(key.strip())
    if account_id is None:
        raise UnauthorizedError("the API key is not valid")
    app.append_context(account_id=account_id)  # type: ignore[no-untyped-call]
    logger.append_keys(account_id=account_id)
    return next_middleware(app)


app.use(middlewares=[authenticate])


@app.exception_handler(BulkApiError)  # type: ignore[untyped-decorator]
def handle_api_error(exc: BulkApiError) -> Response[str]:
    """Our errors carry their HTTP status and a machine-readable code."""
    if exc.status_code >= 500:
        logger.exception("request failed", error=exc.code)
    headers = {"Retry-After": str(exc.details["retry_after"])} if "retry_after" in exc.details else None
    return _json(exc.status_code, exc.body(), headers)


@app.not_found
def handle_not_found(_: Exception) -> Response[str]:
    """Unknown routes answer in the same error shape as everything else."""
    return _json(
        404,
        {"error": "route_not_found", "message": f"no route {app.current_event.http_method} {app.current_event.path}"},
    )


def _account() -> str:
    return str(app.context["account_id"])


def _request_id(event: dict[str, Any]) -> str:
    """API Gateway's id for this request (what `X-Request-Id` says and ledger entries carry)."""
    return str((event.get("requestContext") or {}).get("requestId") or "") or frontdoor.new_request_id()


def _query(name: str, required: bool = True) -> str:
    value = (app.current_event.query_string_parameters or {}).get(name, "")
    if required and not value:
        raise InputError(f"query parameter `{name}` is required", code="missing_parameter", parameter=name)
    return value


@dataclass
class Upload:
    """The fields of a multipart job creation request."""

    fields: dict[str, str]
    file: bytes | None
    filename: str


def parse_multipart(content_type: str, body: bytes) -> Upload:
    """Parse multipart/form-data with the standard library's MIME parser (no extra dependency)."""
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
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if name == "file":
            file = data
            filename = part.get_filename() or "upload.csv"
        else:
            fields[name] = data.decode("utf-8", errors="replace").strip()
    return Upload(fields, file, filename)


def _body_bytes() -> bytes:
    event = app.current_event
    raw = event.body or ""
    return base64.b64decode(raw) if event.is_base64_encoded else raw.encode("utf-8")


@app.get("/api/health")
def health() -> Response[str]:
    """Liveness: answers without a key."""
    return _json(200, {"status": "ok"})


def _job_form() -> tuple[Upload, str, str | None]:
    """The job creation form (also the preview's): the upload, its `type` and optional `column`."""
    settings = load(ApiSettings)
    headers = app.current_event.headers
    content_type = headers.get("Content-Type") or headers.get("content-type") or ""
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
    return upload, job_type, upload.fields.get("column") or None


@app.post("/api/bulk-jobs/preview")
def preview_job() -> Response[str]:
    """What creating a job from this form would detect, count and charge, with its first rows; creates nothing."""
    settings = load(ApiSettings)
    upload, job_type, column = _job_form()
    answer = preview.preview(
        account_id=_account(),
        job_type=job_type,
        body=upload.file or b"",
        column=column,
        max_rows=settings.max_rows_per_job,
        max_bytes=settings.max_upload_bytes,
        store=ports().store,
    )
    return _json(200, {"filename": upload.filename, **answer})


@app.post("/api/bulk-jobs")
def create_job() -> Response[str]:
    """Create an async job from an uploaded CSV."""
    settings = load(ApiSettings)
    headers = app.current_event.headers
    upload, job_type, column = _job_form()

    def create() -> dict[str, Any]:
        p = ports()
        job = jobs.create_job(
            account_id=_account(),
            job_type=job_type,
            filename=upload.filename,
            body=upload.file or b"",
            column=column,
            max_rows=settings.max_rows_per_job,
            max_bytes=settings.max_upload_bytes,
            store=p.store,
            blobs=p.blobs,
            request_id=_request_id(app.current_event.raw_event),
        )
        metrics.add_metric(name="JobsCreated", unit="Count", value=1)
        logger.info("job created", job_id=job.id, rows=job.total_rows, type=job.type)
        return jobs.create_view(job)

    idempotency_key = headers.get("Idempotency-Key") or headers.get("idempotency-key")
    if not idempotency_key:
        return _json(202, create())
    fingerprint = idempotency.fingerprint(upload.file, job_type, column or "")
    return _json(202, idempotency.once(_account(), idempotency_key, fingerprint, create, app.lambda_context))


@app.get("/api/bulk-jobs")
def get_job() -> Response[str]:
    """Status and progress of one job (`id`), or the account's jobs newest first (`limit`, `cursor`, `status`)."""
    job_id = _query("id", required=False)
    if job_id:
        p, retention = ports(), load(ApiSettings).retention_days
        job = jobs.get_job_for(p.store, _account(), job_id)
        now = datetime.now(UTC)
        present = downloads.result_present(job, p.blobs, now, retention)
        view = jobs.status_view(job, now, retention_days=retention, result_present=present)
        records = p.store.variants(job.id) if job.result_key else []
        view["variants"] = downloads.variants_view(job, records, view["result_ready"])
        return _json(200, view)
    limit_text = _query("limit", required=False) or "20"
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
        raise InputError("limit must be a number from 1 to 100", code="invalid_parameter", parameter="limit")
    status = _query("status", required=False) or None
    if status is not None and status not in {s.value for s in JobStatus}:
        raise InputError(f"unknown status {status}", code="invalid_parameter", parameter="status")
    page, cursor = ports().store.list_jobs(
        _account(), limit=int(limit_text), cursor=jobs.decode_cursor(_query("cursor", required=False)), status=status
    )
    return _json(
        200,
        {
            "jobs": [jobs.status_view(j, retention_days=load(ApiSettings).retention_days) for j in page],
            "next_cursor": jobs.encode_cursor(cursor),
        },
    )


@app.get("/api/credits")
def credits() -> Response[str]:
    """The account's balance and its most recent credit movements."""
    store = ports().store
    return _json(200, {"balance": store.account_credits(_account()) or 0, "entries": store.ledger(_account())})


@app.delete("/api/bulk-jobs")
def cancel_job() -> Response[str]:
    """Cancel a running job (rows already processed are kept); purge an ended one (its ledger entries stay)."""
    p, job_id = ports(), _query("id")
    job = purge.delete_job(p.store, p.blobs, p.finalizer, _account(), job_id)
    if job is None:
        return _json(200, {"id": job_id, "status": "deleted"})
    return _json(200, jobs.status_view(job, retention_days=load(ApiSettings).retention_days))


@app.get("/api/bulk-jobs/download")
def download() -> Response[Any]:
    """The result or a variant of it (`status`, `format`, `delimiter`): inline when small, else a redirect to a
    short-lived S3 URL; 202 with Retry-After while a variant is being built; 410 once the result has expired."""
    p, settings = ports(), load(ApiSettings)
    job = jobs.get_job_for(p.store, _account(), _query("id"))
    variant = variants.parse(
        job, _query("status", required=False), _query("format", required=False), _query("delimiter", required=False)
    )
    outcome = downloads.download(
        job,
        variant,
        store=p.store,
        blobs=p.blobs,
        queue=p.variant_queue,
        now=datetime.now(UTC),
        retention_days=settings.retention_days,
        inline_max=INLINE_DOWNLOAD_MAX,
        url_ttl_seconds=settings.download_url_ttl_seconds,
    )
    if isinstance(outcome, downloads.Pending):
        body = {"id": job.id, "variant": outcome.variant, "ready": False, "retry_after": outcome.retry_after}
        return _json(202, body, {"Retry-After": str(outcome.retry_after)})
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


def _json_body() -> dict[str, Any]:
    try:
        body = json.loads(_body_bytes() or b"{}")
    except ValueError as exc:
        raise InputError("the body must be JSON", code="invalid_body") from exc
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object", code="invalid_body")
    return body


def _webhook_store() -> WebhookStore:
    return WebhookStore(load(ApiSettings).jobs_table)


@app.get("/api/webhooks")
def list_webhooks() -> Response[str]:
    """The account's webhook endpoints (secrets are never shown again)."""
    return _json(200, {"webhooks": hooks.list_endpoints(_webhook_store(), _account())})


@app.post("/api/webhooks")
def create_webhook() -> Response[str]:
    """Register an endpoint; the answer carries its signing secret, this once."""
    created = hooks.create_endpoint(
        _webhook_store(), _account(), _json_body(), allow_private=load(ApiSettings).allow_private_targets
    )
    return _json(201, created)


@app.put("/api/webhooks")
def update_webhook() -> Response[str]:
    """Change url, events, description or is_active."""
    updated = hooks.update_endpoint(
        _webhook_store(), _account(), _json_body(), allow_private=load(ApiSettings).allow_private_targets
    )
    return _json(200, updated)


@app.delete("/api/webhooks")
def delete_webhook() -> Response[str]:
    """Remove an endpoint and its delivery history (id in the JSON body or the query)."""
    endpoint_id = str(_json_body().get("id") or _query("id", required=False))
    hooks.delete_endpoint(_webhook_store(), _account(), endpoint_id)
    return _json(200, {"id": endpoint_id, "deleted": True})


@app.post("/api/webhooks/test")
def test_webhook() -> Response[str]:
    """Send a signed `webhook.test` event now and report what the endpoint answered."""
    result = hooks.send_test(
        _webhook_store(),
        _account(),
        str(_json_body().get("id") or ""),
        allow_private=load(ApiSettings).allow_private_targets,
    )
    return _json(200, result)


@app.get("/api/webhooks/deliveries")
def webhook_deliveries() -> Response[str]:
    """The endpoint's last 50 delivery attempts."""
    return _json(200, {"deliveries": hooks.list_deliveries(_webhook_store(), _account(), _query("webhook_id"))})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """API Gateway REST proxy entry point."""
    response = app.resolve(event, context)
    origin = cors.request_origin(event.get("headers"))
    extra = cors.headers_for(origin, cors.allowed_origins(load(ApiSettings).cors_origins)) if origin else {}
    extra[frontdoor.REQUEST_ID_HEADER] = _request_id(event)
    if extra:
        if "multiValueHeaders" in response:
            response["multiValueHeaders"].update({k: [v] for k, v in extra.items()})
        else:
            response.setdefault("headers", {}).update(extra)
    return response
