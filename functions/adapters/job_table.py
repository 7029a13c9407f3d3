"""The jobs table as every job adapter reads it: a job's item (with its batch markers merged), and the
conditional update they all write through."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.aws import client as aws_client
from functions.adapters.table import des, is_conditional, job_key
from functions.errors import StoreError
from functions.models import Job

# Batch markers: a number set per 100 batches (`done_0` holds batches 0-99, `done_1` 100-199, ...), all on the job
# item. A commit gets back only the set of its own batch (UPDATED_NEW), not every marker of the job; readers get them
# all, merged into `done_batches`. (An empty set cannot be stored: only commit_batch creates them.)
MARKER_CHUNK = 100
_MARKER = re.compile(r"done_(\d+)")


def marker_attribute(batch: int) -> str:
    """The attribute holding the marker of a batch."""
    return f"done_{batch // MARKER_CHUNK}"


class JobTable:
    """The jobs table's client and the reads and guarded writes of a job's item that the job adapters share."""

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table = table_name
        self.ddb = client or aws_client("dynamodb")

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
