"""Idempotency-Key support with Powertools' idempotency utility (records in the jobs table, 24 h).

The same key with the same request returns the first answer; the same key with a different request is
refused (422 idempotency_key_reused); while the first request is still running, 409 with Retry-After.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from functions.adapters.aws import client as aws_client
from functions.errors import BulkApiError, ConflictError, InputError
from functions.settings import StorageSettings, load

WINDOW_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255


class IdempotencyKeyReusedError(BulkApiError):
    """The key was used before with a different request."""

    status_code = 422
    code = "idempotency_key_reused"


def fingerprint(*parts: bytes | str | None) -> str:
    """A hash of what makes two requests the same (content, not multipart boundaries)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else (part or b"")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


@cache
def _runner() -> tuple[IdempotencyConfig, Callable[..., dict[str, Any]]]:
    settings = load(StorageSettings)
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.jobs_table,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value="IDEMPOTENCY",
        expiry_attr="expires_at",  # the table's TTL attribute: DynamoDB removes expired records
        boto3_client=aws_client("dynamodb"),
    )
    config = IdempotencyConfig(
        event_key_jmespath="[account, key]",
        payload_validation_jmespath="fingerprint",
        expires_after_seconds=WINDOW_SECONDS,
        raise_on_no_idempotency_key=True,
    )

    @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=config)  # type: ignore[untyped-decorator]
    def run(request: dict[str, str], action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return action()

    return config, run


def once(
    account_id: str, key: str, request_fingerprint: str, action: Callable[[], dict[str, Any]], lambda_context: Any
) -> dict[str, Any]:
    """Run `action` once per (account, key) within 24 h; replays its answer for the same request."""
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise InputError(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters", code="invalid_idempotency_key")
    config, run = _runner()
    if lambda_context is not None:
        # Lets an in-progress record expire with this invocation, so a crash does not block the key for 24 h.
        config.register_lambda_context(lambda_context)
    try:
        return run(request={"account": account_id, "key": key, "fingerprint": request_fingerprint}, action=action)
    except IdempotencyValidationError as exc:
        raise IdempotencyKeyReusedError("this Idempotency-Key was already used with a different request") from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise ConflictError(
            "a request with this Idempotency-Key is still in progress; retry shortly",
            code="idempotency_in_progress",
            retry_after=1,
        ) from exc
