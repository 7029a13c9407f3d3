"""The records of a job's result variants on the jobs table: asked for, built, read."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.job_table import JobTable
from functions.adapters.table import des, is_conditional, job_key, query_prefix, ser
from functions.errors import StoreError


class VariantRecords(JobTable):
    """VARIANT# items beside the job: a request (with its staleness) and the built object's key, rows and size."""

    # --- result variants: items beside the job (pk JOB#<id>, sk VARIANT#<name>), deleted with it --------------------
    def get_variant(self, job_id: str, name: str) -> dict[str, Any] | None:
        """A variant's record (state building or ready, key, rows, size), or None."""
        try:
            resp = self.ddb.get_item(
                TableName=self.table, Key=ser({"pk": f"JOB#{job_id}", "sk": f"VARIANT#{name}"}), ConsistentRead=True
            )
        except ClientError as exc:
            raise StoreError("could not read the variant") from exc
        item = resp.get("Item")
        return des(item) if item else None

    def variants(self, job_id: str) -> list[dict[str, Any]]:
        """The records of every variant asked for so far."""
        try:
            return query_prefix(self.ddb, self.table, f"JOB#{job_id}", "VARIANT#", consistent=True)
        except ClientError as exc:
            raise StoreError("could not read the variants") from exc

    def request_variant(self, job_id: str, name: str, now: str, stale_before: str) -> bool:
        """Note a variant as being built; True when this caller should start the build (first ask, or a build
        that has not finished since `stale_before`), False when one is under way or it is ready."""
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item=ser(
                    {"pk": f"JOB#{job_id}", "sk": f"VARIANT#{name}", "name": name, "state": "building", "at": now}
                ),
                ConditionExpression="attribute_not_exists(pk) OR (#st = :building AND #at < :stale)",
                ExpressionAttributeNames={"#st": "state", "#at": "at"},
                ExpressionAttributeValues=ser({":building": "building", ":stale": stale_before}),
            )
        except ClientError as exc:
            if is_conditional(exc):
                return False
            raise StoreError("could not request the variant") from exc
        return True

    def record_variant(self, job_id: str, name: str, *, key: str, rows: int, size: int, now: str) -> bool:
        """Mark a variant ready, if its job still exists and is not being purged; False otherwise."""
        ready = {
            "pk": f"JOB#{job_id}",
            "sk": f"VARIANT#{name}",
            "name": name,
            "state": "ready",
            "at": now,
            "key": key,
            "rows": rows,
            "size": size,
        }
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": self.table,
                            "Key": job_key(job_id),
                            "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(purging_at)",
                        }
                    },
                    {"Put": {"TableName": self.table, "Item": ser(ready)}},
                ]
            )
        except ClientError as exc:
            if is_conditional(exc):
                return False
            raise StoreError("could not record the variant") from exc
        return True
