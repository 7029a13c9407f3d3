"""A job's progress through the pipeline on the jobs table: the fetch, the split (claim, layout, progress) and the
batches' commits."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.job_table import JobTable, marker_attribute
from functions.adapters.table import is_conditional, job_key, ser
from functions.errors import StoreError
from functions.logic.clock import utcnow
from functions.models import BatchCounts, Job, StoredLayout


class JobProgress(JobTable):
    """The writes of the fetcher, the splitter and the workers: each guarded so that it happens once."""

    def claim_split(
        self, job_id: str, now: str, lease_expired_before: str, *, source_key: str | None = None
    ) -> Job | None:
        """Take the split of a job: queued (or awaiting its upload) -> processing, or re-take a split whose lease
        expired unfinished. With `source_key`, only a job whose file is that object (no read of the job first)."""
        values = {
            ":processing": "processing",
            ":queued": "queued",
            ":awaiting": "awaiting_upload",
            ":now": now,
            ":expired": lease_expired_before,
        }
        condition = (
            "attribute_exists(pk) AND (#s IN (:queued, :awaiting) OR "
            "(#s = :processing AND attribute_not_exists(total_batches) AND split_started_at < :expired))"
        )
        if source_key is not None:
            condition += " AND source_key = :key"
            values[":key"] = source_key
        return self._update_job(
            job_id,
            "could not claim the split",
            UpdateExpression=(
                "SET #s = :processing, split_started_at = :now, started_at = if_not_exists(started_at, :now)"
            ),
            ConditionExpression=condition,
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=ser(values),
        )

    def start_fetch(self, job_id: str, now: str, running_since: str) -> Job | None:
        """Note that a queued job's fetch starts now (the sweeper times it from here); None when it is not queued, or
        when a fetch of it started after `running_since` (another delivery of its message is fetching it)."""
        return self._update_job(
            job_id,
            "could not start the fetch",
            UpdateExpression="SET fetch_started_at = :now",
            ConditionExpression=(
                "#s = :queued AND (attribute_not_exists(fetch_started_at) OR fetch_started_at < :since)"
            ),
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=ser({":now": now, ":queued": "queued", ":since": running_since}),
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
