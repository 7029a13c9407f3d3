"""Webhook endpoints and their deliveries in the jobs table; the retry queue for later attempts."""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.aws import client as aws_client
from functions.adapters.table import des, is_conditional, query_prefix, ser
from functions.errors import StoreError
from functions.logic.webhooks import Attempt

# Owner attribute is `owner`, not `account_id`: items with account_id + created_at would enter the jobs index.
DELIVERY_FIELDS = (
    "id",
    "webhook_id",
    "event_type",
    "status",
    "attempts",
    "response_status",
    "response_body",
    "last_attempt_at",
    "created_at",
    "error",
)


def _present(values: dict[str, Any]) -> dict[str, Any]:
    """The attributes to store: an absent (None) field is left out of the item rather than stored as NULL."""
    return {k: v for k, v in values.items() if v is not None}


class WebhookStore:
    """Endpoints (pk ACCOUNT#, sk WEBHOOK#id) and deliveries (pk WEBHOOK#id, sk DELIVERY#time#msg)."""

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table = table_name
        self.ddb = client or aws_client("dynamodb")

    def put_endpoint(self, account_id: str, endpoint: dict[str, Any]) -> None:
        """Create or replace an endpoint."""
        item = {"pk": f"ACCOUNT#{account_id}", "sk": f"WEBHOOK#{endpoint['id']}", "owner": account_id, **endpoint}
        self.ddb.put_item(TableName=self.table, Item=ser(_present(item)))

    def get_endpoint(self, account_id: str, endpoint_id: str) -> dict[str, Any] | None:
        """An endpoint with its secret, or None."""
        resp = self.ddb.get_item(
            TableName=self.table,
            ConsistentRead=True,
            Key=ser({"pk": f"ACCOUNT#{account_id}", "sk": f"WEBHOOK#{endpoint_id}"}),
        )
        return des(resp["Item"]) if "Item" in resp else None

    def list_endpoints(self, account_id: str) -> list[dict[str, Any]]:
        """The account's endpoints (with secrets: callers strip them)."""
        return query_prefix(self.ddb, self.table, f"ACCOUNT#{account_id}", "WEBHOOK#")

    def active_endpoints(self, account_id: str, event_type: str) -> list[dict[str, Any]]:
        """Active endpoints subscribed to this event type."""
        return [e for e in self.list_endpoints(account_id) if e.get("is_active", True) and event_type in e["events"]]

    def disable_endpoint(self, account_id: str, endpoint_id: str, now: str) -> None:
        """Turn an endpoint off (the receiver answered 410 Gone)."""
        self.ddb.update_item(
            TableName=self.table,
            Key=ser({"pk": f"ACCOUNT#{account_id}", "sk": f"WEBHOOK#{endpoint_id}"}),
            UpdateExpression="SET is_active = :f, updated_at = :now, disabled_reason = :r",
            ExpressionAttributeValues=ser({":f": False, ":now": now, ":r": "receiver answered 410 Gone"}),
        )

    def delete_endpoint(self, account_id: str, endpoint_id: str) -> None:
        """Remove an endpoint and its delivery history."""
        self.ddb.delete_item(
            TableName=self.table, Key=ser({"pk": f"ACCOUNT#{account_id}", "sk": f"WEBHOOK#{endpoint_id}"})
        )
        paginator = self.ddb.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=ser({":pk": f"WEBHOOK#{endpoint_id}"}),
            ProjectionExpression="pk, sk",
        ):
            for item in page.get("Items", []):
                self.ddb.delete_item(TableName=self.table, Key={"pk": item["pk"], "sk": item["sk"]})

    @staticmethod
    def _delivery_key(delivery: dict[str, Any]) -> dict[str, Any]:
        return ser(
            {"pk": f"WEBHOOK#{delivery['webhook_id']}", "sk": f"DELIVERY#{delivery['created_at']}#{delivery['id']}"}
        )

    def start_delivery(self, delivery: dict[str, Any]) -> bool:
        """Record a new delivery; False when it already exists (the event was delivered to us twice)."""
        item = {
            **self._delivery_key(delivery),
            **ser(_present({**delivery, "status": "pending", "owner": delivery["account_id"], "account_id": None})),
        }
        try:
            self.ddb.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if is_conditional(exc):
                return False
            raise StoreError("could not record the delivery") from exc
        return True

    def get_delivery(self, delivery: dict[str, Any]) -> dict[str, Any] | None:
        """The stored delivery (its status), or None."""
        resp = self.ddb.get_item(TableName=self.table, Key=self._delivery_key(delivery), ConsistentRead=True)
        return des(resp["Item"]) if "Item" in resp else None

    def mark_queued(self, delivery: dict[str, Any]) -> None:
        """A pending delivery's first attempt is queued (an attempt that already ran keeps its own status)."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=self._delivery_key(delivery),
                UpdateExpression="SET #s = :queued",
                ConditionExpression="#s = :pending",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=ser({":queued": "queued", ":pending": "pending"}),
            )
        except ClientError as exc:
            if not is_conditional(exc):
                raise StoreError("could not record the delivery as queued") from exc

    def record_attempt(self, delivery: dict[str, Any], attempt: Attempt, status: str, now: str) -> None:
        """Store the latest attempt's outcome on the delivery."""
        self.ddb.update_item(
            TableName=self.table,
            Key=self._delivery_key(delivery),
            UpdateExpression=(
                "SET #s = :s, attempts = :a, response_status = :rs, response_body = :rb, "
                "last_attempt_at = :now, #e = :e"
            ),
            ExpressionAttributeNames={"#s": "status", "#e": "error"},
            ExpressionAttributeValues={
                ":s": {"S": status},
                ":a": {"N": str(delivery.get("attempts", 0))},
                ":rs": {"N": str(attempt.status)},
                ":rb": {"S": attempt.body},
                ":now": {"S": now},
                ":e": {"S": attempt.error} if attempt.error else {"NULL": True},
            },
        )

    def deliveries(self, endpoint_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The endpoint's most recent deliveries, newest first."""
        out = []
        for data in query_prefix(
            self.ddb, self.table, f"WEBHOOK#{endpoint_id}", "DELIVERY#", newest_first=True, limit=limit
        ):
            view = {k: data.get(k) for k in DELIVERY_FIELDS}
            view["payload"] = json.loads(data.get("payload") or "{}")
            out.append(view)
        return out


class RetryQueue:
    """Later attempts go through an SQS queue with a per-message delay (at most 15 minutes per hop)."""

    MAX_DELAY = 900

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self.url = queue_url
        self.sqs = client or aws_client("sqs")

    def schedule(self, delivery: dict[str, Any], delay_seconds: int) -> None:
        """Send the delivery back after `delay_seconds`; longer waits hop through the queue several times."""
        body = {**delivery, "not_before": time.time() + delay_seconds}
        self.sqs.send_message(
            QueueUrl=self.url, MessageBody=json.dumps(body), DelaySeconds=min(delay_seconds, self.MAX_DELAY)
        )

    def requeue(self, body: dict[str, Any], remaining: float) -> None:
        """Send a not-yet-due message back for another hop."""
        self.sqs.send_message(
            QueueUrl=self.url,
            MessageBody=json.dumps(body),
            DelaySeconds=max(0, min(int(remaining) + 1, self.MAX_DELAY)),
        )
