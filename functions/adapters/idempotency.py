"""Idempotency-Key support with Powertools' idempotency utility (records in the jobs table, 24 h).

The same key with the same request returns the first answer; the same key with a different request is
refused (422 idempotency_key_reused); while the first request is still running, 409 with Retry-After.
"""

from __future__ import annotations

import hashlib
import threading
import time
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from functions.adapters.aws import client as aws_client
from functions.errors import BulkApiError, ConflictError, InputError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

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


class JobIdempotency:
    """Idempotency-Key for job creation, with Powertools' utility on the jobs table."""

    def __init__(self, table_name: str) -> None:
        self.table = table_name
        self._lock = threading.Lock()
        self._runner: tuple[IdempotencyConfig, Callable[..., dict[str, Any]]] | None = None

    def _run(self) -> tuple[IdempotencyConfig, Callable[..., dict[str, Any]]]:
        with self._lock:
            if self._runner is None:
                self._runner = _runner(self.table)
            return self._runner

    def once(
        self,
        account_id: str,
        key: str,
        request_fingerprint: str,
        action: Callable[[], dict[str, Any]],
        lambda_context: Any,
    ) -> dict[str, Any]:
        """Run `action` once per (account, key) within 24 h; replays its answer for the same request."""
        if not key.strip() or len(key) > MAX_KEY_LENGTH:
            raise InputError(
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters", code="invalid_idempotency_key"
            )
        config, run = self._run()
        if lambda_context is not None:
            # Lets an in-progress record expire with this invocation, so a crash does not block the key for 24 h.
            config.register_lambda_context(lambda_context)
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

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


def _runner(table_name: str) -> tuple[IdempotencyConfig, Callable[..., dict[str, Any]]]:
    # Powertools' idempotency imports boto3: loaded with the first request that carries an Idempotency-Key.
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    persistence = DynamoDBPersistenceLayer(
        table_name=table_name,
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


class InlineReplay:
    """Idempotency for the streamed inline endpoints: the first answer's bytes are kept and replayed.

    Powertools' utility stores a function's return value; a stream is only known once it has been sent, so
    these records are written here: in progress at the start, the compressed transcript at the end.
    """

    PK = "IDEMPOTENCY#INLINE"
    STALE_SECONDS = 15 * 60  # longer than a stream can run (the stream function's timeout is 60 s)
    MAX_TRANSCRIPT = 350 * 1024  # DynamoDB items are limited to 400 KB

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table = table_name
        self.ddb = client or aws_client("dynamodb")

    def _key(self, account_id: str, key: str) -> dict[str, Any]:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return {"pk": {"S": self.PK}, "sk": {"S": f"{account_id}#{digest}"}}

    def begin(self, account_id: str, key: str, request_fingerprint: str) -> bytes | None:
        """None: go ahead (the request is recorded as in progress); bytes: the original answer to replay."""
        if not key.strip() or len(key) > MAX_KEY_LENGTH:
            raise InputError(
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters", code="invalid_idempotency_key"
            )
        now = int(time.time())
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item={
                    **self._key(account_id, key),
                    "fingerprint": {"S": request_fingerprint},
                    "state": {"S": "in_progress"},
                    "started_at": {"N": str(now)},
                    "expires_at": {"N": str(now + WINDOW_SECONDS)},
                },
                ConditionExpression=(
                    "attribute_not_exists(pk) OR expires_at < :now OR (#st = :in AND started_at < :stale)"
                ),
                ExpressionAttributeNames={"#st": "state"},
                ExpressionAttributeValues={
                    ":now": {"N": str(now)},
                    ":in": {"S": "in_progress"},
                    ":stale": {"N": str(now - self.STALE_SECONDS)},
                },
            )
            return None
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
        item = self.ddb.get_item(TableName=self.table, Key=self._key(account_id, key), ConsistentRead=True).get(
            "Item", {}
        )
        if item.get("fingerprint", {}).get("S") != request_fingerprint:
            raise IdempotencyKeyReusedError("this Idempotency-Key was already used with a different request")
        if item.get("state", {}).get("S") == "done":
            return zlib.decompress(item["transcript"]["B"])
        raise ConflictError(
            "a request with this Idempotency-Key is still in progress; retry shortly",
            code="idempotency_in_progress",
            retry_after=1,
        )

    def finish(self, account_id: str, key: str, transcript: bytes) -> None:
        """Keep the complete answer for replays (a too-large one is dropped: a retry then runs again)."""
        packed = zlib.compress(transcript, 6)
        if len(packed) > self.MAX_TRANSCRIPT:
            self.abandon(account_id, key)
            return
        self.ddb.update_item(
            TableName=self.table,
            Key=self._key(account_id, key),
            UpdateExpression="SET #st = :done, transcript = :t",
            ExpressionAttributeNames={"#st": "state"},
            ExpressionAttributeValues={":done": {"S": "done"}, ":t": {"B": packed}},
        )

    def abandon(self, account_id: str, key: str) -> None:
        """Forget an answer that was not completed (client left, refused, failed): the key can be used again."""
        self.ddb.delete_item(TableName=self.table, Key=self._key(account_id, key))
