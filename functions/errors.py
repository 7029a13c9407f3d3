"""The project's exceptions. Each carries a machine-readable code; the API maps them to HTTP in one place."""

from __future__ import annotations

from typing import Any


class BulkApiError(Exception):
    """Base class: a stable error code, a human message and optional details for the error body."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def body(self) -> dict[str, Any]:
        """The JSON error body: {"error": code, "code": code, "message": text, ...details}.

        `code` repeats `error` because the official Go client reads `code` (and the Python client `error`).
        """
        return error_body(self.code, self.message, **self.details)


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """Every error body's shape, for answers that raise no exception (the gateways, the stream's routing)."""
    return {"error": code, "code": code, "message": message, **details}


class InputError(BulkApiError):
    """The caller's input cannot be processed (bad file, bad field). Known before or after upload."""

    status_code = 400
    code = "invalid_input"


class PayloadTooLargeError(InputError):
    """The upload is larger than the documented limit."""

    status_code = 413
    code = "file_too_large"


class UnauthorizedError(BulkApiError):
    """Missing or unknown API key."""

    status_code = 401
    code = "unauthorized"


class NotFoundError(BulkApiError):
    """The resource does not exist or belongs to another account (the two are indistinguishable on purpose)."""

    status_code = 404
    code = "not_found"


class ConflictError(BulkApiError):
    """The resource is not in a state that allows the operation."""

    status_code = 409
    code = "conflict"


class GoneError(BulkApiError):
    """The resource existed but is no longer kept (an expired result): retrying will not bring it back."""

    status_code = 410
    code = "result_expired"


class InsufficientCreditsError(BulkApiError):
    """The account balance does not cover the job."""

    status_code = 402
    code = "insufficient_credits"


class StoreError(BulkApiError):
    """An AWS call failed in a way the caller cannot fix; retried by the platform where it can be."""

    status_code = 503
    code = "storage_unavailable"


class MethodNotAllowedError(BulkApiError):
    """The route exists, not with this method."""

    status_code = 405
    code = "method_not_allowed"


class RouteNotFoundError(BulkApiError):
    """No route for this method and path."""

    status_code = 404
    code = "route_not_found"


class UnsupportedMediaTypeError(InputError):
    """The body's media type is not one the route takes."""

    status_code = 415


# Every `error` code an HTTP answer can carry, with its status: README's error table and the OpenAPI document are
# checked against this list (tests/test_contract.py), and a code used anywhere in functions/ must be in it.
API_ERRORS: dict[str, int] = {
    # the request itself
    "invalid_body": 400,
    "invalid_parameter": 400,
    "unknown_parameter": 400,
    "missing_parameter": 400,
    "invalid_content_type": 400,
    "invalid_multipart": 400,
    "missing_file": 400,
    "missing_type": 400,
    "duplicate_field": 400,
    "unsupported_type": 400,
    "invalid_idempotency_key": 400,
    "invalid_cursor": 400,
    # the file
    "empty_file": 400,
    "no_rows": 400,
    "not_csv": 400,
    "malformed_csv": 400,
    "column_not_found": 400,
    "unsupported_format": 400,
    "invalid_archive": 400,
    "archive_has_several_files": 400,
    "encrypted_file": 400,
    "incomplete_archive": 400,
    "sheet_not_found": 400,
    "too_many_rows": 400,
    "too_many_columns": 400,
    "row_too_large": 400,
    # inline lists
    "too_many_items": 400,
    "empty_list": 400,
    # webhooks
    "invalid_webhook_url": 400,
    "invalid_events": 400,
    "too_many_webhooks": 400,
    "unauthorized": 401,
    # answered by API Gateway itself, deployed (infra/api_access.py GATEWAY_ANSWERS)
    "account_not_enabled": 403,
    "rate_limited": 429,
    "quota_exceeded": 429,
    "insufficient_credits": 402,
    "job_not_found": 404,
    "webhook_not_found": 404,
    "route_not_found": 404,
    "method_not_allowed": 405,
    "job_not_finished": 409,
    "job_finished": 409,
    "job_failed": 409,
    "idempotency_in_progress": 409,
    "result_expired": 410,
    "file_too_large": 413,
    "request_too_large": 413,
    "unsupported_media_type": 415,
    "idempotency_key_reused": 422,
    "internal_error": 500,
    "storage_unavailable": 503,
}
# Codes a job can end `failed` with that no HTTP answer carries (its status's `error`; README's "Why a job failed"
# table lists them, checked by tests/test_contract.py). A file the splitter refuses ends with the file's 400 code
# (`no_rows`, `malformed_csv`, ...) and a balance too small with `insufficient_credits`, as they would answer.
JOB_ERRORS: dict[str, str] = {
    "upload_expired": "a presigned upload's form expired with no file",
    "fetch_blocked": "the file's URL resolves to an address the service may not fetch from",
    "fetch_too_large": "the file at the URL is larger than the upload limit",
    "fetch_failed": "the file could not be fetched",
    "upload_failed": "the file could not be stored",
    "upload_changed": "the file was replaced while it was being read",
    "not_started": "the file was never picked up",
    "split_failed": "the splitter kept failing",
    "stalled": "no batch finished for too long",
    "finalizer_failed": "the result could not be assembled",
}


class FetchError(BulkApiError):
    """A file the service was asked to fetch from a URL could not be (code: one of the `fetch_*` JOB_ERRORS)."""

    status_code = 400
    code = "fetch_failed"


# Codes only `bulkapi admin` prints (never an HTTP answer).
ADMIN_ERRORS: frozenset[str] = frozenset(
    {"account_exists", "account_not_found", "key_not_found", "invalid_name", "invalid_credits", "invalid_type"}
)
