"""The jobs table's jobs: the job store every function gets, composed of the job item's reads (job_table.py), the
pipeline's progress writes (job_progress.py) and the variant records (job_variants.py); here the job's own life:
created, moved between statuses, given its result, purged, listed.

Credits and the ledger are functions/adapters/credits.py; accounts and keys functions/adapters/accounts.py.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.job_progress import JobProgress
from functions.adapters.job_variants import VariantRecords
from functions.adapters.table import ACTIVE_MARK, is_conditional, job_key, new_job_item, ser
from functions.errors import StoreError
from functions.models import Job, JobStatus

ACTIVE_INDEX = "active"


class JobStore(JobProgress, VariantRecords):
    """Reads and conditional writes on the jobs table; every counter move is guarded so it happens once."""

    # --- jobs -------------------------------------------------------------------------------------------------
    def put_new_job(self, job: Job) -> bool:
        """Store a new job; False when a job with this id already exists (a duplicate event or request)."""
        try:
            self.ddb.put_item(
                TableName=self.table, Item=new_job_item(job), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as exc:
            if is_conditional(exc):
                return False
            raise StoreError("could not store the job") from exc
        return True

    def set_status(
        self,
        job_id: str,
        status: JobStatus,
        *,
        only_from: tuple[str, ...],
        now: str,
        error: str | None = None,
        error_message: str | None = None,
    ) -> Job | None:
        """Move a job to a status if it is in one of `only_from`; None when it was not (nothing changed)."""
        names = {"#s": "status"}
        values: dict[str, Any] = {":new": status.value, ":now": now}
        sets = ["#s = :new"]
        removes = ""
        if status.is_terminal:
            sets.append("completed_at = if_not_exists(completed_at, :now)")
            removes = " REMOVE #active"  # leaves the sparse index the sweeper reads
            names["#active"] = "active"
        if error is not None:
            sets += ["#e = :error", "error_message = :msg"]
            names["#e"] = "error"
            values[":error"] = error
            values[":msg"] = error_message or error
        allowed = []
        for i, state in enumerate(only_from):
            values[f":from{i}"] = state
            allowed.append(f":from{i}")
        return self._update_job(
            job_id,
            "could not change the job status",
            UpdateExpression="SET " + ", ".join(sets) + removes,
            ConditionExpression=f"#s IN ({', '.join(allowed)})",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=ser(values),
        )

    def record_result(
        self, job_id: str, result_key: str, result_rows: int, now: str, summary: dict[str, dict[str, int]]
    ) -> Job:
        """Store where the assembled result is, when it was written and its summary; downloads are possible from then
        on."""
        resp = self.ddb.update_item(
            TableName=self.table,
            Key=job_key(job_id),
            UpdateExpression="SET result_key = :k, result_rows = :n, result_at = :now, #sum = :sum",
            ExpressionAttributeNames={"#sum": "summary"},
            ExpressionAttributeValues=ser({":k": result_key, ":n": result_rows, ":now": now, ":sum": summary}),
            ReturnValues="ALL_NEW",
        )
        return self._to_job(resp["Attributes"])

    def begin_purge(self, job_id: str, now: str) -> Job | None:
        """Mark an ended, settled job as being purged (again, if a purge stopped halfway); None if it may not be."""
        return self._update_job(
            job_id,
            "could not start the purge",
            UpdateExpression="SET purging_at = if_not_exists(purging_at, :now)",
            ConditionExpression="#s IN (:completed, :failed, :cancelled) AND credits_settled = :t",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=ser(
                {":now": now, ":completed": "completed", ":failed": "failed", ":cancelled": "cancelled", ":t": True}
            ),
        )

    def delete_job(self, job_id: str) -> None:
        """Delete the job's items (the job and what is kept beside it); its ledger entries stay with the account."""
        try:
            kwargs: dict[str, Any] = {
                "TableName": self.table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": ser({":pk": f"JOB#{job_id}"}),
                "ProjectionExpression": "pk, sk",
            }
            while True:
                resp = self.ddb.query(**kwargs)
                for item in resp.get("Items", []):
                    self.ddb.delete_item(TableName=self.table, Key={"pk": item["pk"], "sk": item["sk"]})
                if "LastEvaluatedKey" not in resp:
                    return
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        except ClientError as exc:
            raise StoreError("could not delete the job") from exc

    def active_job_ids(self, created_before: str, limit: int = 500) -> list[str]:
        """Ids of jobs not yet ended and created before a time, oldest first (the sweeper's work list)."""
        ids: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": ACTIVE_INDEX,
            "KeyConditionExpression": "#active = :a AND created_at < :before",
            "ExpressionAttributeNames": {"#active": "active"},
            "ExpressionAttributeValues": ser({":a": ACTIVE_MARK, ":before": created_before}),
        }
        while len(ids) < limit:
            resp = self.ddb.query(**kwargs)
            ids += [str(item["pk"]["S"]).removeprefix("JOB#") for item in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return ids[:limit]

    def list_jobs(
        self, account_id: str, *, limit: int, cursor: dict[str, Any] | None, status: str | None
    ) -> tuple[list[Job], dict[str, Any] | None]:
        """The account's jobs, newest first, a page at a time (filtering by status keeps paging until full)."""
        jobs: list[Job] = []
        start = cursor
        while len(jobs) < limit:
            kwargs: dict[str, Any] = {
                "TableName": self.table,
                "IndexName": "by_account",
                "ScanIndexForward": False,
                "KeyConditionExpression": "account_id = :a",
                "ExpressionAttributeValues": ser({":a": account_id}),
                "Limit": limit - len(jobs),
            }
            if status:
                kwargs["FilterExpression"] = "#s = :s"
                kwargs["ExpressionAttributeNames"] = {"#s": "status"}
                kwargs["ExpressionAttributeValues"] = ser({":a": account_id, ":s": status})
            if start:
                kwargs["ExclusiveStartKey"] = start
            resp = self.ddb.query(**kwargs)
            jobs += [self._to_job(item) for item in resp.get("Items", [])]
            start = resp.get("LastEvaluatedKey")
            if not start:
                break
        return jobs, start
