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
        """The JSON error body: {"error": code, "message": text, ...details}."""
        return {"error": self.code, "message": self.message, **self.details}


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
    code = "gone"


class InsufficientCreditsError(BulkApiError):
    """The account balance does not cover the job."""

    status_code = 402
    code = "insufficient_credits"


class StoreError(BulkApiError):
    """An AWS call failed in a way the caller cannot fix; retried by the platform where it can be."""

    status_code = 503
    code = "storage_unavailable"
