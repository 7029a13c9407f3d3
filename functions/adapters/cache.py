"""The answer cache: one DynamoDB table (`pk` = source#query), answers as JSON, expiring through DynamoDB TTL.

DynamoDB deletes expired items lazily (within days), so reads also compare `expires_at` with the clock. Reads use
BatchGetItem (100 keys per call), writes BatchWriteItem (25 per call); what DynamoDB leaves unprocessed is retried
a few times and then treated as a miss (read) or left out (write): the cache only ever saves provider calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from functions.adapters.aws import client as aws_client

GET_CHUNK = 100
PUT_CHUNK = 25
ATTEMPTS = 4


class AnswerCache:
    """CachePort on a DynamoDB table with a string partition key `pk` and TTL attribute `expires_at`."""

    def __init__(
        self,
        table_name: str,
        client: Any | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table_name
        self._client = client
        self._clock = clock
        self._sleep = sleep

    @property
    def client(self) -> Any:
        """The DynamoDB client (the shared cached one unless injected)."""
        return self._client or aws_client("dynamodb")

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        """The unexpired answers stored under these keys."""
        now = int(self._clock())
        found: dict[str, str] = {}
        distinct = list(dict.fromkeys(keys))
        for start in range(0, len(distinct), GET_CHUNK):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [{"pk": {"S": k}} for k in distinct[start : start + GET_CHUNK]],
                    "ProjectionExpression": "pk, answer, expires_at",
                }
            }
            for attempt in range(ATTEMPTS):
                reply = self.client.batch_get_item(RequestItems=request)
                for item in reply.get("Responses", {}).get(self.table, []):
                    if int(item["expires_at"]["N"]) > now:
                        found[item["pk"]["S"]] = item["answer"]["S"]
                request = reply.get("UnprocessedKeys") or {}
                if not request:
                    break
                self._sleep(0.05 * 2**attempt)
        return found

    def put_many(self, entries: Mapping[str, str], ttl_seconds: int) -> None:
        """Store answers that stop being valid `ttl_seconds` from now."""
        expires = str(int(self._clock()) + ttl_seconds)
        items = [
            {"PutRequest": {"Item": {"pk": {"S": k}, "answer": {"S": v}, "expires_at": {"N": expires}}}}
            for k, v in entries.items()
        ]
        for start in range(0, len(items), PUT_CHUNK):
            request: dict[str, Any] = {self.table: items[start : start + PUT_CHUNK]}
            for attempt in range(ATTEMPTS):
                reply = self.client.batch_write_item(RequestItems=request)
                request = reply.get("UnprocessedItems") or {}
                if not request:
                    break
                self._sleep(0.05 * 2**attempt)
