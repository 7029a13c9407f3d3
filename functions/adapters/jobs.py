"""The jobs table: jobs, batch markers, accounts and API keys (one DynamoDB table, pk/sk)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.aws import client as aws_client
from functions.adapters.aws import type_deserializer, type_serializer
from functions.errors import InsufficientCreditsError, StoreError
from functions.models import BatchCounts, Job, JobStatus, StoredLayout

_SER = type_serializer()
_DES = type_deserializer()
# Jobs that are not yet terminal carry `active` (and so appear in the sparse `active` index the sweeper reads).
ACTIVE_MARK = "ACTIVE"
ACTIVE_INDEX = "active"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def key_hash(api_key: str) -> str:
    """API keys are stored as their SHA-256, never as themselves."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def _ser(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SER.serialize(v) for k, v in values.items()}


def _des(item: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: _DES.deserialize(v) for k, v in item.items()}
    for k, v in out.items():
        if hasattr(v, "as_integer_ratio") and not isinstance(v, (int, float)):
            out[k] = int(v)
    return out


# Batch markers: a number set per 100 batches (`done_0` holds batches 0-99, `done_1` 100-199, ...), all on the job
# item. A commit gets back only the set of its own batch (UPDATED_NEW), not every marker of the job; readers get them
# all, merged into `done_batches`. (An empty set cannot be stored: only commit_batch creates them.)
MARKER_CHUNK = 100
_MARKER = re.compile(r"done_(\d+)")


def marker_attribute(batch: int) -> str:
    """The attribute holding the marker of a batch."""
    return f"done_{batch // MARKER_CHUNK}"


def _job_attributes(job: Job) -> dict[str, Any]:
    return job.model_dump(mode="json", exclude_none=True, exclude={"done_batches"})


def _job_key(job_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}


def _is_conditional(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in (
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
    )


class JobStore:
    """Reads and conditional writes on the jobs table; every counter move is guarded so it happens once."""

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table = table_name
        self.ddb = client or aws_client("dynamodb")

    # --- jobs -------------------------------------------------------------------------------------------------
    def put_new_job(self, job: Job) -> bool:
        """Store a new job; False when a job with this id already exists (a duplicate event or request)."""
        item = {
            "pk": f"JOB#{job.id}",
            "sk": "JOB",
            "active": ACTIVE_MARK,
            **_job_attributes(job),
        }
        try:
            self.ddb.put_item(TableName=self.table, Item=_ser(item), ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if _is_conditional(exc):
                return False
            raise StoreError("could not store the job") from exc
        return True

    def get_job(self, job_id: str) -> Job | None:
        """The job, read strongly consistent, or None."""
        try:
            resp = self.ddb.get_item(TableName=self.table, Key=_job_key(job_id), ConsistentRead=True)
        except ClientError as exc:
            raise StoreError("could not read the job") from exc
        item = resp.get("Item")
        return self._to_job(item) if item else None

    @staticmethod
    def _to_job(item: Mapping[str, Any]) -> Job:
        data = _des(item)
        markers: list[int] = []
        for name in [name for name in data if _MARKER.fullmatch(name)]:
            markers += (int(n) for n in data.pop(name))
        data["done_batches"] = sorted(markers)
        return Job.model_validate(data)

    def claim_split(self, job_id: str, now: str, lease_expired_before: str) -> Job | None:
        """Take the split of a job: queued (or awaiting its upload) -> processing, or re-take a split whose lease
        expired unfinished."""
        try:
            resp = self.ddb.update_item(
                TableName=self.table,
                Key=_job_key(job_id),
                UpdateExpression=(
                    "SET #s = :processing, split_started_at = :now, started_at = if_not_exists(started_at, :now)"
                ),
                ConditionExpression=(
                    "attribute_exists(pk) AND (#s IN (:queued, :awaiting) OR "
                    "(#s = :processing AND attribute_not_exists(total_batches) AND split_started_at < :expired))"
                ),
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=_ser(
                    {
                        ":processing": "processing",
                        ":queued": "queued",
                        ":awaiting": "awaiting_upload",
                        ":now": now,
                        ":expired": lease_expired_before,
                    }
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _is_conditional(exc):
                return None
            raise StoreError("could not claim the split") from exc
        return self._to_job(resp["Attributes"])

    def record_layout(self, job_id: str, header: list[str], column: str, layout: StoredLayout) -> None:
        """Record the detected layout as soon as the file is sniffed, so no later read sniffs it again (its delimiter
        and encoding also on their own: the result is written in the input's delimiter)."""
        self.ddb.update_item(
            TableName=self.table,
            Key=_job_key(job_id),
            UpdateExpression="SET #h = :h, detected_column = :c, #l = :l, delimiter = :d, encoding = :e",
            ExpressionAttributeNames={"#h": "header", "#l": "layout"},
            ExpressionAttributeValues=_ser(
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
                Key=_job_key(job_id),
                UpdateExpression=update,
                ConditionExpression="#s = :processing",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=_ser(values),
            )
        except ClientError as exc:
            if not _is_conditional(exc):
                raise StoreError("could not record the split's progress") from exc

    def finish_split(
        self, job_id: str, total_rows: int, total_batches: int, header: list[str], max_width: int
    ) -> Job | None:
        """Record the totals once the whole file is split (once: a second split's finish changes nothing); returns the
        job as it is now (None if it ended meanwhile, or the totals were already recorded)."""
        try:
            resp = self.ddb.update_item(
                TableName=self.table,
                Key=_job_key(job_id),
                # batches_pending: the workers count it down, the split adds the total, in any order; it is 0 once
                # every batch is counted (and only then: before this, it is minus the batches already counted).
                UpdateExpression=(
                    "SET total_rows = :rows, total_batches = :batches, #h = :h, max_width = :w "
                    "ADD batches_pending :batches"
                ),
                ConditionExpression="#s = :processing AND attribute_not_exists(total_batches)",
                ExpressionAttributeNames={"#s": "status", "#h": "header"},
                ExpressionAttributeValues=_ser(
                    {
                        ":rows": total_rows,
                        ":batches": total_batches,
                        ":processing": "processing",
                        ":h": header,
                        ":w": max_width,
                    }
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _is_conditional(exc):
                return None
            raise StoreError("could not record the split totals") from exc
        return self._to_job(resp["Attributes"])

    def touch_progress(self, job_id: str) -> None:
        """Note that a processing job is moving although no batch was counted (a deferred batch)."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=_job_key(job_id),
                UpdateExpression="SET last_progress_at = :now",
                ConditionExpression="#s = :processing",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":now": {"S": _now()}, ":processing": {"S": "processing"}},
            )
        except ClientError as exc:
            if not _is_conditional(exc):
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
                Key=_job_key(job_id),
                UpdateExpression=(
                    "ADD #done :marker, #n :one, #pending :minus, #p :p, #ok :s, #inv :i, #f :f, #c :c "
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
                    ":processing": {"S": "processing"},
                    ":now": {"S": _now()},
                },
                # Only what changed: the batch's own marker set and the counters, not every marker of the job.
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if _is_conditional(exc):
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
        try:
            resp = self.ddb.update_item(
                TableName=self.table,
                Key=_job_key(job_id),
                UpdateExpression="SET " + ", ".join(sets) + removes,
                ConditionExpression=f"#s IN ({', '.join(allowed)})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_ser(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _is_conditional(exc):
                return None
            raise StoreError("could not change the job status") from exc
        return self._to_job(resp["Attributes"])

    def record_result(self, job_id: str, result_key: str, result_rows: int, now: str) -> Job:
        """Store where the assembled result is and when it was written; downloads are possible from then on."""
        resp = self.ddb.update_item(
            TableName=self.table,
            Key=_job_key(job_id),
            UpdateExpression="SET result_key = :k, result_rows = :n, result_at = :now",
            ExpressionAttributeValues=_ser({":k": result_key, ":n": result_rows, ":now": now}),
            ReturnValues="ALL_NEW",
        )
        return self._to_job(resp["Attributes"])

    def begin_purge(self, job_id: str, now: str) -> Job | None:
        """Mark an ended, settled job as being purged (again, if a purge stopped halfway); None if it may not be."""
        try:
            resp = self.ddb.update_item(
                TableName=self.table,
                Key=_job_key(job_id),
                UpdateExpression="SET purging_at = if_not_exists(purging_at, :now)",
                ConditionExpression="#s IN (:completed, :failed, :cancelled) AND credits_settled = :t",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=_ser(
                    {":now": now, ":completed": "completed", ":failed": "failed", ":cancelled": "cancelled", ":t": True}
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _is_conditional(exc):
                return None
            raise StoreError("could not start the purge") from exc
        return self._to_job(resp["Attributes"])

    def delete_job(self, job_id: str) -> None:
        """Delete the job's items (the job and what is kept beside it); its ledger entries stay with the account."""
        try:
            kwargs: dict[str, Any] = {
                "TableName": self.table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": _ser({":pk": f"JOB#{job_id}"}),
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
                TableName=self.table, Key=_ser({"pk": f"JOB#{job_id}", "sk": f"VARIANT#{name}"}), ConsistentRead=True
            )
        except ClientError as exc:
            raise StoreError("could not read the variant") from exc
        item = resp.get("Item")
        return _des(item) if item else None

    def variants(self, job_id: str) -> list[dict[str, Any]]:
        """The records of every variant asked for so far."""
        try:
            resp = self.ddb.query(
                TableName=self.table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues=_ser({":pk": f"JOB#{job_id}", ":prefix": "VARIANT#"}),
                ConsistentRead=True,
            )
        except ClientError as exc:
            raise StoreError("could not read the variants") from exc
        return [_des(item) for item in resp.get("Items", [])]

    def request_variant(self, job_id: str, name: str, now: str, stale_before: str) -> bool:
        """Note a variant as being built; True when this caller should start the build (first ask, or a build
        that has not finished since `stale_before`), False when one is under way or it is ready."""
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item=_ser(
                    {"pk": f"JOB#{job_id}", "sk": f"VARIANT#{name}", "name": name, "state": "building", "at": now}
                ),
                ConditionExpression="attribute_not_exists(pk) OR (#st = :building AND #at < :stale)",
                ExpressionAttributeNames={"#st": "state", "#at": "at"},
                ExpressionAttributeValues=_ser({":building": "building", ":stale": stale_before}),
            )
        except ClientError as exc:
            if _is_conditional(exc):
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
                            "Key": _job_key(job_id),
                            "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(purging_at)",
                        }
                    },
                    {"Put": {"TableName": self.table, "Item": _ser(ready)}},
                ]
            )
        except ClientError as exc:
            if _is_conditional(exc):
                return False
            raise StoreError("could not record the variant") from exc
        return True

    def _ledger_put(
        self, account_id: str, ref: str, kind: str, amount: int, now: str, request_id: str | None = None
    ) -> dict[str, Any]:
        # `ref` is the job id, or for an inline request its request id (the entry then has no job).
        entry: dict[str, Any] = {
            "pk": f"ACCOUNT#{account_id}",
            "sk": f"LEDGER#{now}#{ref}#{kind}",
            "kind": kind,
            "amount": amount,
            "at": now,
        }
        if ref not in ("-", request_id):
            entry["job_id"] = ref
        if request_id:
            entry["request_id"] = request_id
        return {
            "Put": {"TableName": self.table, "Item": _ser(entry), "ConditionExpression": "attribute_not_exists(pk)"}
        }

    def _debit(self, account_id: str, amount: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": _ser({"pk": f"ACCOUNT#{account_id}", "sk": "ACCOUNT"}),
                "UpdateExpression": "ADD #credits :minus",
                "ConditionExpression": "#credits >= :needed",
                "ExpressionAttributeNames": {"#credits": "credits"},
                "ExpressionAttributeValues": {":minus": {"N": str(-amount)}, ":needed": {"N": str(amount)}},
            }
        }

    def _raise_short(self, account_id: str, needed: int, exc: ClientError, what: str = "this job") -> None:
        reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
        if (reasons and reasons[0] == "ConditionalCheckFailed") or not reasons:
            balance = self.account_credits(account_id) or 0
            raise InsufficientCreditsError(
                f"{what} needs {needed} credits, the balance is {balance}", required=needed, balance=balance
            ) from exc
        raise StoreError("could not reserve the credits") from exc

    def create_job_reserving(self, job: Job, now: str, request_id: str | None = None) -> None:
        """Store a new job and reserve its rows' credits in one transaction: a balance can never go below zero.

        Raises InsufficientCreditsError (402) when the balance does not cover `job.total_rows`.
        """
        needed = job.total_rows or 0
        job.credits_reserved = needed
        item = {
            "pk": f"JOB#{job.id}",
            "sk": "JOB",
            "active": ACTIVE_MARK,
            **_job_attributes(job),
        }
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    self._debit(job.account_id, needed),
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": _ser(item),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    self._ledger_put(job.account_id, job.id, "reserve", -needed, now, request_id),
                ]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                self._raise_short(job.account_id, needed, exc)
            raise StoreError("could not store the job") from exc

    def reserve_for_job(self, job: Job, rows: int, now: str) -> None:
        """Reserve credits for a job created without them (a dropped, presigned or fetched file, once its rows are
        counted); the count becomes the job's `total_rows` in the same transaction."""
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    self._debit(job.account_id, rows),
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": _job_key(job.id),
                            "UpdateExpression": "SET credits_reserved = :n, total_rows = :n",
                            "ConditionExpression": "attribute_not_exists(credits_reserved) OR credits_reserved = :zero",
                            "ExpressionAttributeValues": {":n": {"N": str(rows)}, ":zero": {"N": "0"}},
                        }
                    },
                    self._ledger_put(job.account_id, job.id, "reserve", -rows, now),
                ]
            )
        except ClientError as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                return  # already reserved by an earlier delivery of the same event
            self._raise_short(job.account_id, rows, exc)

    def settle_credits(self, job: Job, now: str) -> bool:
        """Refund what was reserved but not used (invalid, error, cancelled, unprocessed rows), exactly once."""
        refund = max(0, job.credits_reserved - job.credits_used)
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": _job_key(job.id),
                    "UpdateExpression": "SET credits_settled = :t",
                    "ConditionExpression": "attribute_not_exists(credits_settled) OR credits_settled = :f",
                    "ExpressionAttributeValues": {":t": {"BOOL": True}, ":f": {"BOOL": False}},
                }
            }
        ]
        if refund:
            items.append(self._credit(job.account_id, refund))
            items.append(self._ledger_put(job.account_id, job.id, "refund", refund, now))
        try:
            self.ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _is_conditional(exc):
                return False
            raise StoreError("could not settle the credits") from exc
        return True

    # --- inline requests: reserve before the stream, refund what was not used when it ends ------------------------
    def reserve_inline(self, account_id: str, request_id: str, credits: int, now: str) -> None:
        """Take `credits` for an inline request in one transaction: the debit (never below zero), a `reserve`
        ledger entry and a reservation record that the refund consumes, so it is refunded at most once.

        Raises InsufficientCreditsError (402) when the balance does not cover them.
        """
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    self._debit(account_id, credits),
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": _ser(
                                {
                                    "pk": f"ACCOUNT#{account_id}",
                                    "sk": f"INLINE#{request_id}",
                                    "reserved": credits,
                                    "at": now,
                                }
                            ),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    self._ledger_put(account_id, request_id, "reserve", -credits, now, request_id),
                ]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                self._raise_short(account_id, credits, exc, what="this request")
            raise StoreError("could not reserve the credits") from exc

    def settle_inline(self, account_id: str, request_id: str, reserved: int, used: int, now: str) -> int:
        """Give back `reserved - used` once (the reservation record goes in the same transaction); the refund."""
        refund = max(0, reserved - used)
        items: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": _ser({"pk": f"ACCOUNT#{account_id}", "sk": f"INLINE#{request_id}"}),
                    "ConditionExpression": "reserved = :reserved",
                    "ExpressionAttributeValues": {":reserved": {"N": str(reserved)}},
                }
            }
        ]
        if refund:
            items.append(self._credit(account_id, refund))
            items.append(self._ledger_put(account_id, request_id, "refund", refund, now, request_id))
        try:
            self.ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _is_conditional(exc):
                return 0  # already settled
            raise StoreError("could not refund the credits") from exc
        return refund

    def grant_credits(self, account_id: str, credits: int, now: str, request_id: str | None = None) -> None:
        """Add credits to an existing account, with its `grant` ledger entry."""
        grant = self._credit(account_id, credits)
        grant["Update"]["ConditionExpression"] = "attribute_exists(pk)"
        try:
            self.ddb.transact_write_items(
                TransactItems=[grant, self._ledger_put(account_id, "-", "grant", credits, now, request_id)]
            )
        except ClientError as exc:
            if _is_conditional(exc):
                raise StoreError(f"no account {account_id}") from exc
            raise StoreError("could not grant the credits") from exc

    def _credit(self, account_id: str, amount: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": _ser({"pk": f"ACCOUNT#{account_id}", "sk": "ACCOUNT"}),
                "UpdateExpression": "ADD #credits :amount",
                "ExpressionAttributeNames": {"#credits": "credits"},
                "ExpressionAttributeValues": {":amount": {"N": str(amount)}},
            }
        }

    def active_job_ids(self, created_before: str, limit: int = 500) -> list[str]:
        """Ids of jobs not yet ended and created before a time, oldest first (the sweeper's work list)."""
        ids: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": ACTIVE_INDEX,
            "KeyConditionExpression": "#active = :a AND created_at < :before",
            "ExpressionAttributeNames": {"#active": "active"},
            "ExpressionAttributeValues": _ser({":a": ACTIVE_MARK, ":before": created_before}),
        }
        while len(ids) < limit:
            resp = self.ddb.query(**kwargs)
            ids += [str(item["pk"]["S"]).removeprefix("JOB#") for item in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return ids[:limit]

    def ledger(self, account_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The account's most recent credit movements, newest first."""
        resp = self.ddb.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=_ser({":pk": f"ACCOUNT#{account_id}", ":prefix": "LEDGER#"}),
            ScanIndexForward=False,
            Limit=limit,
        )
        fields = ("job_id", "request_id", "kind", "amount", "at")
        return [{k: _des(item).get(k) for k in fields} for item in resp.get("Items", [])]

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
                "ExpressionAttributeValues": _ser({":a": account_id}),
                "Limit": limit - len(jobs),
            }
            if status:
                kwargs["FilterExpression"] = "#s = :s"
                kwargs["ExpressionAttributeNames"] = {"#s": "status"}
                kwargs["ExpressionAttributeValues"] = _ser({":a": account_id, ":s": status})
            if start:
                kwargs["ExclusiveStartKey"] = start
            resp = self.ddb.query(**kwargs)
            jobs += [self._to_job(item) for item in resp.get("Items", [])]
            start = resp.get("LastEvaluatedKey")
            if not start:
                break
        return jobs, start

    # --- accounts and keys ------------------------------------------------------------------------------------
    def put_api_key(self, api_key: str, account_id: str, key_id: str, now: str) -> None:
        """Store an API key as its hash, plus a key-id record so it can be revoked without knowing the key."""
        hashed = key_hash(api_key)
        self.ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": _ser(
                            {
                                "pk": f"KEY#{hashed}",
                                "sk": "KEY",
                                "account_id": account_id,
                                "key_id": key_id,
                                "key_created_at": now,
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": _ser(
                            {
                                "pk": f"KEYID#{key_id}",
                                "sk": "KEYID",
                                "key_hash": hashed,
                                "owner": account_id,
                                "key_created_at": now,
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )

    def revoke_api_key(self, key_id: str, now: str) -> str | None:
        """Revoke a key by its id; returns the account it belonged to, or None when there is no such key."""
        resp = self.ddb.get_item(TableName=self.table, Key=_ser({"pk": f"KEYID#{key_id}", "sk": "KEYID"}))
        item = resp.get("Item")
        if not item:
            return None
        hashed = item["key_hash"]["S"]
        self.ddb.update_item(
            TableName=self.table,
            Key=_ser({"pk": f"KEY#{hashed}", "sk": "KEY"}),
            UpdateExpression="SET revoked_at = :now",
            ExpressionAttributeValues=_ser({":now": now}),
        )
        self.ddb.update_item(
            TableName=self.table,
            Key=_ser({"pk": f"KEYID#{key_id}", "sk": "KEYID"}),
            UpdateExpression="SET revoked_at = :now",
            ExpressionAttributeValues=_ser({":now": now}),
        )
        return str(item["owner"]["S"])

    def create_account(self, account_id: str, name: str, credits: int, now: str) -> bool:
        """A new account with a starting balance (and its ledger entry); False if the id exists."""
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": _ser(
                                {
                                    "pk": f"ACCOUNT#{account_id}",
                                    "sk": "ACCOUNT",
                                    "id": account_id,
                                    "name": name,
                                    "credits": credits,
                                    "account_created_at": now,
                                }
                            ),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    self._ledger_put(account_id, "-", "grant", credits, now),
                ]
            )
        except ClientError as exc:
            if _is_conditional(exc):
                return False
            raise StoreError("could not create the account") from exc
        return True

    def _scan(self, filter_expression: str, values: dict[str, Any], names: dict[str, str] | None = None) -> list[Any]:
        # Admin listings only (no request path scans): accounts and keys have no index of their own.
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": filter_expression,
            "ExpressionAttributeValues": _ser(values),
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        items: list[Any] = []
        try:
            for page in self.ddb.get_paginator("scan").paginate(**kwargs):
                items += [_des(item) for item in page.get("Items", [])]
        except ClientError as exc:
            raise StoreError("could not list the table") from exc
        return items

    def list_accounts(self) -> list[dict[str, Any]]:
        """Every account: id, name, balance, creation time."""
        return [
            {
                "account_id": item["id"],
                "name": item.get("name"),
                "credits": item.get("credits"),
                "created_at": item.get("account_created_at"),
            }
            for item in self._scan("sk = :sk AND begins_with(pk, :prefix)", {":sk": "ACCOUNT", ":prefix": "ACCOUNT#"})
        ]

    def list_keys(self, account_id: str) -> list[dict[str, Any]]:
        """An account's keys by id (never the key or its hash), with creation and revocation times."""
        items = self._scan(
            "sk = :sk AND #owner = :account", {":sk": "KEYID", ":account": account_id}, {"#owner": "owner"}
        )
        return [
            {
                "key_id": str(item["pk"]).removeprefix("KEYID#"),
                "created_at": item.get("key_created_at"),
                "revoked_at": item.get("revoked_at"),
            }
            for item in items
        ]

    def account_for_key(self, api_key: str) -> str | None:
        """The account id an API key belongs to, or None when it is unknown or revoked."""
        resp = self.ddb.get_item(TableName=self.table, Key=_ser({"pk": f"KEY#{key_hash(api_key)}", "sk": "KEY"}))
        item = resp.get("Item")
        if not item or "revoked_at" in item:
            return None
        return str(item["account_id"]["S"])

    def account_credits(self, account_id: str) -> int | None:
        """The account's balance, or None when the account does not exist."""
        resp = self.ddb.get_item(
            TableName=self.table, Key=_ser({"pk": f"ACCOUNT#{account_id}", "sk": "ACCOUNT"}), ConsistentRead=True
        )
        item = resp.get("Item")
        return int(item["credits"]["N"]) if item else None
