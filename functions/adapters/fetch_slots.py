"""Per-account fetch slots in the jobs table: how many of the fetcher's concurrent fetches one account holds.

One item per account (pk FETCHES#<account>, sk FETCHES) maps each job being fetched to the moment its slot lapses
(its fetch's time limit and a margin): a fetcher that dies without giving its slot back (a crash, a timeout) only
holds it until then. Every change is conditional on the item's version, so two fetchers taking the last slot at
the same moment cannot both have it; the one that loses reads again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.aws import client as aws_client
from functions.adapters.table import des, is_conditional, ser
from functions.errors import StoreError

ATTEMPTS = 5


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FetchSlots:
    """Takes and gives back an account's fetch slots (at most `per_account` held at once)."""

    def __init__(self, table_name: str, *, per_account: int, hold_seconds: float, client: Any | None = None) -> None:
        self.table = table_name
        self.per_account = per_account
        self.hold = timedelta(seconds=hold_seconds)
        self.ddb = client or aws_client("dynamodb")

    @staticmethod
    def _key(account_id: str) -> dict[str, Any]:
        return ser({"pk": f"FETCHES#{account_id}", "sk": "FETCHES"})

    def acquire(self, account_id: str, job_id: str) -> bool:
        """Take a slot for this job's fetch (again, if it already holds one); False when the account's are all held."""
        for _ in range(ATTEMPTS):
            now = datetime.now(UTC)
            try:
                resp = self.ddb.get_item(TableName=self.table, Key=self._key(account_id), ConsistentRead=True)
            except ClientError as exc:
                raise StoreError("could not read the account's fetch slots") from exc
            item = des(resp["Item"]) if "Item" in resp else {}
            version = int(item.get("version", 0))
            held = {job: until for job, until in dict(item.get("slots") or {}).items() if until > _iso(now)}
            if len(held.keys() - {job_id}) >= self.per_account:
                return False
            held[job_id] = _iso(now + self.hold)
            if self._write(account_id, held, version):
                return True
        raise StoreError("could not take a fetch slot: too many writers at once")

    def release(self, account_id: str, job_id: str) -> None:
        """Give the job's slot back (nothing when it holds none)."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=self._key(account_id),
                # The version moves too: a fetcher that read the slots before this would otherwise write them back.
                UpdateExpression="REMOVE slots.#job SET version = version + :one",
                ConditionExpression="attribute_exists(slots.#job)",
                ExpressionAttributeNames={"#job": job_id},
                ExpressionAttributeValues=ser({":one": 1}),
            )
        except ClientError as exc:
            if not is_conditional(exc):
                raise StoreError("could not give the fetch slot back") from exc

    def _write(self, account_id: str, held: dict[str, str], version: int) -> bool:
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item={**self._key(account_id), **ser({"slots": held, "version": version + 1})},
                ConditionExpression="attribute_not_exists(pk) OR version = :v",
                ExpressionAttributeValues=ser({":v": version}),
            )
        except ClientError as exc:
            if is_conditional(exc):
                return False
            raise StoreError("could not take a fetch slot") from exc
        return True
