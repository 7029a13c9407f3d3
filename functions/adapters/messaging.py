"""The work queue, the event bus and the finalizer state machine."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.aws import client as aws_client
from functions.errors import StoreError

SOURCE = "bulkapi"


# SQS's documented limits for SendMessageBatch: at most 10 entries, and the bodies of one call together at most
# 1 MiB (1,048,576 bytes, counted in UTF-8 bytes; the AWS API reference for SendMessageBatch).
MAX_BATCH_ENTRIES = 10
MAX_CALL_BYTES = 1_048_576
# One message: the queue's MaximumMessageSize. The stack leaves it at its default, which was 256 KiB before SQS
# raised the maximum to 1 MiB; 256 KiB fits either.
MAX_MESSAGE_BYTES = 262_144


def send_groups(bodies: Sequence[str]) -> list[list[str]]:
    """Consecutive bodies grouped into SendMessageBatch calls within the entry and byte limits."""
    groups: list[list[str]] = []
    size = 0
    for body in bodies:
        length = len(body.encode("utf-8"))
        if length > MAX_MESSAGE_BYTES:
            raise StoreError(f"a work message of {length} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")
        if not groups or len(groups[-1]) >= MAX_BATCH_ENTRIES or size + length > MAX_CALL_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(body)
        size += length
    return groups


class WorkQueue:
    """Sends work messages in as few SendMessageBatch calls as SQS's limits allow, retrying entries that failed."""

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self.url = queue_url
        self.sqs = client or aws_client("sqs")

    def send(self, bodies: Sequence[str]) -> None:
        """Send message bodies; raises StoreError if some could not be sent after retries (or are too large)."""
        for group in send_groups(bodies):
            entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(group)]
            for _attempt in range(3):
                try:
                    resp = self.sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
                except ClientError as exc:
                    raise StoreError(f"could not queue {len(entries)} work messages") from exc
                failed_ids = {f["Id"] for f in resp.get("Failed", [])}
                entries = [e for e in entries if e["Id"] in failed_ids]
                if not entries:
                    break
            if entries:
                raise StoreError(f"could not queue {len(entries)} work messages")


class FetchQueue:
    """Asks the fetcher to fetch a job's file from its URL (one message per job)."""

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self.url = queue_url
        self.sqs = client or aws_client("sqs")

    def request_fetch(self, job_id: str, delay_seconds: int = 0) -> None:
        """Queue the fetch of a job's file (after `delay_seconds`, at most SQS's 15 minutes); raises StoreError when
        SQS does not take it."""
        try:
            self.sqs.send_message(
                QueueUrl=self.url,
                MessageBody=json.dumps({"job_id": job_id}),
                DelaySeconds=max(0, min(delay_seconds, 900)),
            )
        except ClientError as exc:
            raise StoreError("could not queue the fetch") from exc


class EventBus:
    """Puts the project's events on its EventBridge bus."""

    def __init__(self, bus_name: str, client: Any | None = None) -> None:
        self.bus = bus_name
        self.events = client or aws_client("events")

    def put(self, detail_type: str, detail: dict[str, Any]) -> None:
        """Put one event; raises StoreError if EventBridge did not accept it."""
        resp = self.events.put_events(
            Entries=[
                {"Source": SOURCE, "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": self.bus}
            ]
        )
        if resp.get("FailedEntryCount"):
            raise StoreError(f"EventBridge refused {detail_type}: {resp['Entries']}")


class Finalizer:
    """Starts the finalizer state machine for a job; the execution name is the job id, so a second start is a no-op."""

    def __init__(self, state_machine_arn: str, client: Any | None = None) -> None:
        self.arn = state_machine_arn
        self.sfn = client or aws_client("stepfunctions")

    def start(self, job_id: str) -> bool:
        """Start it; False when an execution for this job already exists."""
        try:
            self.sfn.start_execution(stateMachineArn=self.arn, name=job_id, input=json.dumps({"job_id": job_id}))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return False
            raise StoreError("could not start the finalizer") from exc
        return True
