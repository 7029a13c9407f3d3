"""The jobs table's jobs: the job item, its batch markers and result variants (one DynamoDB table, pk/sk).

Credits and the ledger are functions/adapters/credits.py; accounts and keys functions/adapters/accounts.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.aws import client as aws_client
from functions.adapters.table import ACTIVE_MARK, des, is_conditional, job_key, new_job_item, query_prefix, ser
from functions.errors import StoreError
from functions.logic.jobs import utcnow
from functions.models import BatchCounts, Job, JobStatus, StoredLayout

ACTIVE_INDEX = "active"


# Batch markers: a number set per 100 batches (`done_0` holds batches 0-99, `done_1` 100-199, ...), all on the job
# item. A commit gets back only the set of its own batch (UPDATED_NEW), not every marker of the job; readers get them
# all, merged into `done_batches`. (An empty set cannot be stored: only commit_batch creates them.)
MARKER_CHUNK = 100
_MARKER = re.compile(r"done_(\d+)")


def marker_attribute(batch: int) -> str:
    """The attribute holding the marker of a batch."""
    return f"done_{batch // MARKER_CHUNK}"


class JobStore:
    """Reads and conditional writes on the jobs table; every counter move is guarded so it happens once."""

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table = table_name
        self.ddb = client or aws_client("dynamodb")

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

    def get_job(self, job_id: str) -> Job | None:
        """The job, read strongly consistent, or None."""
        try:
            resp = self.ddb.get_item(TableName=self.table, Key=job_key(job_id), ConsistentRead=True)
        except ClientError as exc:
            raise StoreError("could not read the job") from exc
        item = resp.get("Item")
        return self._to_job(item) if item else None

    @staticmethod
    def _to_job(item: Mapping[str, Any]) -> Job:
        data = des(item)
        markers: list[int] = []
        for name in [name for name in data if _MARKER.fullmatch(name)]:
            markers += (int(n) for n in data.pop(name))
        data["done_batches"] = sorted(markers)
        return Job.model_validate(data)

    def _update_job(self, job_id: str, failure: str, **update: Any) -> Job | None:
        """A conditional update of a job's item: the job as it is after it, or None when the condition did not hold."""
        try:
            resp = self.ddb.update_item(TableName=self.table, Key=job_key(job_id), ReturnValues="ALL_NEW", **update)
        except ClientError as exc:
            if is_conditional(exc):
                return None
            raise StoreError(failure) from exc
        return self._to_job(resp["Attributes"])

    def claim_split(self, job_id: str, now: str, lease_expired_before: str) -> Job | None:
        """Take the split of a job: queued (or awaiting its upload) -> processing, or re-take a split whose lease
        expired unfinished."""
        return self._update_job(
            job_id,
            "could not claim the split",
            UpdateExpression=(
                "SET #s = :processing, split_started_at = :now, started_at = if_not_exists(started_at, :now)"
            ),
            ConditionExpression=(
                "attribute_exists(pk) AND (#s IN (:queued, :awaiting) OR "
                "(#s = :processing AND attribute_not_exists(total_batches) AND split_started_at < :expired))"
            ),
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=ser(
                {
                    ":processing": "processing",
                    ":queued": "queued",
                    ":awaiting": "awaiting_upload",
                    ":now": now,
                    ":expired": lease_expired_before,
                }
            ),
        )

    def start_fetch(self, job_id: str, now: str) -> Job | None:
        """Note that a queued job's fetch starts now (the sweeper times it from here); None when it is not queued."""
        return self._update_job(
            job_id,
            "could not start the fetch",
            UpdateExpression="SET fetch_started_at = :now",
            ConditionExpression="#s = :queued",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=ser({":now": now, ":queued": "queued"}),
        )

    def finish_fetch(self, job_id: str, now: str) -> None:
        """Note that a queued job's file is stored (it now waits for the split, as any uploaded file)."""
        self._update_job(
            job_id,
            "could not record the fetch",
            UpdateExpression="SET fetched_at = :now",
            ConditionExpression="#s = :queued",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=ser({":now": now, ":queued": "queued"}),
        )

    def record_layout(self, job_id: str, header: list[str], column: str, layout: StoredLayout) -> None:
        """Record the detected layout as soon as the file is sniffed, so no later read sniffs it again (its delimiter
        and encoding also on their own: the result is written in the input's delimiter)."""
        self.ddb.update_item(
            TableName=self.table,
            Key=job_key(job_id),
            UpdateExpression="SET #h = :h, detected_column = :c, #l = :l, delimiter = :d, encoding = :e",
            ExpressionAttributeNames={"#h": "header", "#l": "layout"},
            ExpressionAttributeValues=ser(
                {
                    ":h": header,
                    ":c": column,
                    ":l": layout.model_dump(mode="json"),
                    ":d": layout.delimiter,
                    ":e": layout.encoding,
                }
            ),
        )

    def record_split_progress(self, job_id: str, bytes_read: int, bytes_total: int | None) -> None:
        """How far the split has read the file (the status shows it while the rows are not counted yet)."""
        values: dict[str, Any] = {":r": bytes_read, ":processing": "processing"}
        update = "SET split_bytes_read = :r"
        if bytes_total is not None:
            update += ", split_bytes_total = :t"
            values[":t"] = bytes_total
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=job_key(job_id),
                UpdateExpression=update,
                ConditionExpression="#s = :processing",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=ser(values),
            )
        except ClientError as exc:
            if not is_conditional(exc):
                raise StoreError("could not record the split's progress") from exc

    def finish_split(
        self, job_id: str, total_rows: int, total_batches: int, header: list[str], max_width: int
    ) -> Job | None:
        """Record the totals once the whole file is split (once: a second split's finish changes nothing); returns the
        job as it is now (None if it ended meanwhile, or the totals were already recorded)."""
        return self._update_job(
            job_id,
            "could not record the split totals",
            # batches_pending: the workers count it down, the split adds the total, in any order; it is 0 once
            # every batch is counted (and only then: before this, it is minus the batches already counted).
            UpdateExpression=(
                "SET total_rows = :rows, total_batches = :batches, #h = :h, max_width = :w ADD batches_pending :batches"
            ),
            ConditionExpression="#s = :processing AND attribute_not_exists(total_batches)",
            ExpressionAttributeNames={"#s": "status", "#h": "header"},
            ExpressionAttributeValues=ser(
                {
                    ":rows": total_rows,
                    ":batches": total_batches,
                    ":processing": "processing",
                    ":h": header,
                    ":w": max_width,
                }
            ),
        )

    def touch_progress(self, job_id: str) -> None:
        """Note that a processing job is moving although no batch was counted (a deferred batch)."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=job_key(job_id),
                UpdateExpression="SET last_progress_at = :now",
                ConditionExpression="#s = :processing",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":now": {"S": utcnow()}, ":processing": {"S": "processing"}},
            )
        except ClientError as exc:
            if not is_conditional(exc):
                raise StoreError("could not note the job's progress") from exc

    def commit_batch(self, job_id: str, batch: int, counts: BatchCounts) -> int | None:
        """Count a batch once: the marker (a member of the batch's marker set) and the counters move in one conditional
        write.

        Returns the job's batches_pending after the write (0: this was the last batch of a finished split; below 0
        while the split is still running), or None when the batch was already counted or the job is no longer
        processing (cancelled or failed): both mean "nothing to do", never an error.
        """
        try:
            resp = self.ddb.update_item(
                TableName=self.table,
                Key=job_key(job_id),
                UpdateExpression=(
                    "ADD #done :marker, #n :one, #pending :minus, #p :p, #ok :s, #inv :i, #f :f, #c :c, #dup :d "
                    "SET last_progress_at = :now"
                ),
                ConditionExpression="#s = :processing AND NOT contains(#done, :batch)",
                # Aliases for every name: several (status, processed, ...) are DynamoDB reserved words.
                ExpressionAttributeNames={
                    "#s": "status",
                    "#done": marker_attribute(batch),
                    "#n": "batches_done",
                    "#pending": "batches_pending",
                    "#p": "processed",
                    "#ok": "succeeded",
                    "#inv": "invalid",
                    "#f": "failed",
                    "#c": "credits_used",
                    "#dup": "duplicates",
                },
                ExpressionAttributeValues={
                    ":marker": {"NS": [str(batch)]},
                    ":batch": {"N": str(batch)},
                    ":one": {"N": "1"},
                    ":minus": {"N": "-1"},
                    ":p": {"N": str(counts.processed)},
                    ":s": {"N": str(counts.succeeded)},
                    ":i": {"N": str(counts.invalid)},
                    ":f": {"N": str(counts.failed)},
                    ":c": {"N": str(counts.credits)},
                    ":d": {"N": str(counts.duplicates)},
                    ":processing": {"S": "processing"},
                    ":now": {"S": utcnow()},
                },
                # Only what changed: the batch's own marker set and the counters, not every marker of the job.
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if is_conditional(exc):
                return None
            raise StoreError("could not count the batch") from exc
        return int(resp["Attributes"]["batches_pending"]["N"])

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
