"""The glue moto lacks: SQS event source mappings, S3 -> Lambda and EventBridge -> Lambda, as queue pollers.

Each poller behaves like Lambda's SQS event source mapping: it receives up to the mapping's batch size,
runs at most its maximum concurrency of invocations at once, deletes only the messages that succeeded
(ReportBatchItemFailures), and leaves failures to come back after a (locally shortened) delay; moto's
RedrivePolicy moves a message to the DLQ after maxReceiveCount receives.
"""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from local.lambdas import InvocationError, Invoker
from local.resources import REGION, QueueMapping


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS message as Lambda's event source mapping delivers it."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def s3_records(body: dict[str, Any]) -> list[dict[str, Any]]:
    """moto's S3 notification records, fixed up to the shape AWS sends (and Powertools' S3 models expect)."""
    fixed = []
    for record in body.get("Records", []):
        obj = record["s3"]["object"]
        # moto quotes '/' as %2F; AWS keeps it.
        obj["key"] = quote_plus(unquote_plus(obj["key"]), safe="/")
        obj.setdefault(
            "sequencer",
            hashlib.sha256(f"{obj['key']}{obj.get('eTag')}{record.get('eventTime')}".encode()).hexdigest()[:16].upper(),
        )
        obj.setdefault("versionId", None)
        record.setdefault("userIdentity", {"principalId": "local"})
        record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
        record.setdefault("responseElements", {"x-amz-request-id": "local", "x-amz-id-2": "local"})
        record["s3"]["bucket"].setdefault("ownerIdentity", {"principalId": "local"})
        fixed.append(record)
    return fixed


class Poller:
    """Polls one queue for one function, like an event source mapping."""

    def __init__(
        self,
        mapping: QueueMapping,
        invoker: Invoker,
        sqs: Any,
        *,
        concurrency_cap: int,
        retry_delay: int,
        wait_seconds: int,
    ) -> None:
        self.m = mapping
        self.invoker = invoker
        self.sqs = sqs
        self.workers = max(1, min(mapping.max_concurrency, concurrency_cap))
        self.retry_delay = retry_delay
        self.wait_seconds = wait_seconds
        self.stop_event = threading.Event()
        self.slots = threading.Semaphore(self.workers)
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=f"poll-{mapping.function}")
        self.thread = threading.Thread(target=self._run, name=f"poller-{mapping.function}", daemon=True)

    def start(self) -> None:
        """Start polling."""
        self.thread.start()

    def stop(self) -> None:
        """Stop receiving; in-flight invocations finish on their own threads."""
        self.stop_event.set()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            # Take a slot before receiving, so no message waits (invisible) for a busy function.
            if not self.slots.acquire(timeout=0.5):
                continue
            try:
                messages = self.sqs.receive_message(
                    QueueUrl=self.m.queue_url,
                    MaxNumberOfMessages=self.m.batch_size,
                    WaitTimeSeconds=self.wait_seconds,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:  # the emulation is stopping
                self.slots.release()
                if self.stop_event.wait(0.5):
                    return
                continue
            if not messages:
                self.slots.release()
                continue
            try:
                self.pool.submit(self._process, messages)
            except RuntimeError:  # pool shut down
                self.slots.release()
                return

    def _process(self, messages: list[dict[str, Any]]) -> None:
        try:
            if self.m.kind == "sqs":
                failed = self._invoke_sqs(messages)
            else:
                failed = {m["MessageId"] for m in messages if not self._invoke_single(m)}
            self._settle(messages, failed)
        finally:
            self.slots.release()

    def _invoke_sqs(self, messages: list[dict[str, Any]]) -> set[str]:
        event = {"Records": [sqs_record(m, self.m.queue_arn) for m in messages]}
        try:
            result = self.invoker.invoke(self.m.function, event)
        except InvocationError:
            return {m["MessageId"] for m in messages}
        if self.m.report_failures and isinstance(result, dict):
            return {str(f["itemIdentifier"]) for f in result.get("batchItemFailures", [])}
        return set()

    def _invoke_single(self, message: dict[str, Any]) -> bool:
        body = json.loads(message["Body"])
        if self.m.kind == "s3":
            if body.get("Event") == "s3:TestEvent":
                return True
            event = {"Records": s3_records(body)}
        else:
            event = body
        try:
            self.invoker.invoke(self.m.function, event)
        except InvocationError:
            return False
        return True

    def _settle(self, messages: list[dict[str, Any]], failed: set[str]) -> None:
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.m.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        retry = [m for m in messages if m["MessageId"] in failed]
        if retry:
            # Deployed, a failed message waits out its visibility timeout; locally that wait is shortened.
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.m.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self.retry_delay}
                    for i, m in enumerate(retry)
                ],
            )
