"""What the stores on the jobs table share: DynamoDB (de)serializing, conditional-failure detection and the job item.

One table (pk/sk) holds several aggregates, each with its own store: jobs (functions/adapters/jobs.py), credits
(credits.py), accounts and keys (accounts.py), webhooks (webhooks.py). The job item is written by two of them: the
job store, and the credit store when a job is created together with its reservation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.aws import type_deserializer, type_serializer
from functions.models import Job

# Loaded on first use: importing boto3's types imports all of boto3 (functions/adapters/aws.py).
_SER = type_serializer()
_DES = type_deserializer()
# Jobs that are not yet terminal carry `active` (and so appear in the sparse `active` index the sweeper reads).
ACTIVE_MARK = "ACTIVE"


def ser(values: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values as DynamoDB attribute values."""
    return {k: _SER.serialize(v) for k, v in values.items()}


def des(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain values (whole numbers as int, not Decimal)."""
    out = {k: _DES.deserialize(v) for k, v in item.items()}
    for k, v in out.items():
        if hasattr(v, "as_integer_ratio") and not isinstance(v, (int, float)):
            out[k] = int(v)
    return out


def is_conditional(exc: ClientError) -> bool:
    """Whether a write failed on its condition (or a transaction was cancelled), not on an error."""
    return exc.response.get("Error", {}).get("Code") in (
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
    )


def query_prefix(
    ddb: Any,
    table: str,
    pk: str,
    prefix: str,
    *,
    newest_first: bool = False,
    limit: int | None = None,
    consistent: bool = False,
) -> list[dict[str, Any]]:
    """The items of one partition whose sort key starts with `prefix` (one page), as plain values."""
    options: dict[str, Any] = {"ScanIndexForward": not newest_first, "ConsistentRead": consistent}
    if limit is not None:
        options["Limit"] = limit
    resp = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues=ser({":pk": pk, ":prefix": prefix}),
        **options,
    )
    return [des(item) for item in resp.get("Items", [])]


def job_key(job_id: str) -> dict[str, Any]:
    """The key of a job's item."""
    return {"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}


def new_job_item(job: Job) -> dict[str, Any]:
    """A new job's item, marked active (batch markers are never stored from the model: commits create them)."""
    attributes = job.model_dump(mode="json", exclude_none=True, exclude={"done_batches"})
    return ser({"pk": f"JOB#{job.id}", "sk": "JOB", "active": ACTIVE_MARK, **attributes})
