"""The glue moto lacks: SQS event source mappings, S3 -> Lambda and EventBridge -> Lambda, as queue pollers.

A poller of an event source mapping behaves like Lambda's: it receives up to the mapping's batch size,
runs at most its maximum concurrency of invocations at once, deletes only the messages that succeeded
(ReportBatchItemFailures), and leaves failures to come back after a (locally shortened) delay; moto's
RedrivePolicy moves a message to the DLQ after maxReceiveCount receives.

S3 notifications and EventBridge rule targets invoke a function asynchronously. Their events reach a shadow queue
(moto cannot call a Lambda), and its poller hands each to AsyncInvocations, which does what Lambda does with an
asynchronous event: it takes the event off the queue, retries a function error the function's EventInvokeConfig
number of times (AWS's default: 2) while the event is younger than its maximum age (default 6 h), and then sends it to
the on-failure destination or the function's dead-letter queue, or drops it with a log line saying so.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from botocore.exceptions import ClientError

from local.lambdas import InvocationError, Invoker
from local.resources import ACCOUNT, REGION, LocalFunction, QueueMapping


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


def invocation_record(fn_arn: str, event: Any, error: InvocationError, condition: str, attempts: int) -> dict[str, Any]:
    """What Lambda sends an on-failure destination about an asynchronous invocation it gave up on."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{fn_arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": error.error_message, "errorType": error.error_type, "stackTrace": []},
    }


def _arn_parts(arn: str) -> tuple[str, str]:
    """(service, resource name) of an ARN: arn:aws:sqs:us-east-1:123456789012:name -> ("sqs", "name"); a function's
    name without its qualifier, a bus's without `event-bus/`."""
    service, resource = arn.split(":", 5)[2], arn.split(":", 5)[5]
    if service == "lambda":
        return service, resource.split(":")[1]
    return service, resource.rsplit("/", 1)[-1]


class AsyncInvocations:
    """Lambda's handling of asynchronous invocations (InvocationType=Event, S3 notifications, EventBridge targets).

    Deployed, Lambda waits about a minute before the first retry and two before the second; locally the waits are
    `retry_delay` seconds times the attempt number. Retries run on timers, so a waiting event holds no poller slot.

    An event given up on is sent, as Lambda sends it, with the function's execution role (`function_clients`: service,
    function logical id -> client): a role without the grant gets AccessDenied, which AWS counts as the function's
    DeadLetterErrors and the event is lost. `clients` (the runtime's) only looks up a queue's URL from its ARN.
    """

    def __init__(
        self,
        invoker: Invoker,
        clients: Callable[[str], Any],
        retry_delay: float,
        function_clients: Callable[[str, str], Any] | None = None,
    ) -> None:
        self.invoker = invoker
        self.clients = clients
        self.function_clients = function_clients or (lambda service, _function: clients(service))
        self.retry_delay = retry_delay
        self.stopped = threading.Event()
        # Events given up on, by function logical id and where they went ("destination", "dead_letter", "dropped").
        self.given_up: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def stop(self) -> None:
        """Stop retrying (waiting retries are abandoned, as when the runtime stops)."""
        self.stopped.set()

    def invoke(self, function: str, event: Any, queued_at: float | None = None, attempt: int = 1) -> bool:
        """One attempt now; on a function error, the next attempt is scheduled or the event is given up on.
        Returns whether this attempt succeeded."""
        queued_at = time.time() if queued_at is None else queued_at
        fn = self.invoker.functions[function]
        try:
            self.invoker.invoke(function, event)
        except InvocationError as error:
            config = fn.asynchronous
            if attempt > config.max_retries:
                self._give_up(fn, event, error, "RetriesExhausted", attempt)
            elif time.time() - queued_at + self.retry_delay * attempt > config.max_event_age:
                self._give_up(fn, event, error, "EventAgeExceeded", attempt)
            elif not self.stopped.is_set():
                timer = threading.Timer(
                    self.retry_delay * attempt, self.invoke, args=(function, event, queued_at, attempt + 1)
                )
                timer.daemon = True
                timer.start()
            return False
        return True

    def _give_up(self, fn: LocalFunction, event: Any, error: InvocationError, condition: str, attempts: int) -> None:
        config = fn.asynchronous
        fn_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn.name}"
        went = []
        if config.on_failure:
            if self._send(fn, config.on_failure, invocation_record(fn_arn, event, error, condition, attempts)):
                went.append("destination")
        if config.dead_letter:
            if self._send(fn, config.dead_letter, event, error):
                went.append("dead_letter")
        where = " and ".join(went) or "dropped"
        with self._lock:
            self.given_up.append((fn.logical_id, where))
        if went:
            print(
                f"{fn.name}: asynchronous invocation failed {attempts} times ({condition}, {error.error_type}); "
                f"the event went to its {where.replace('_', '-')} {config.on_failure or config.dead_letter}",
                flush=True,
            )
        elif not (config.on_failure or config.dead_letter):
            print(
                f"{fn.name}: asynchronous invocation failed {attempts} times ({condition}, {error.error_type}): "
                "the event is DROPPED, as Lambda drops it (no on-failure destination, no dead-letter queue)",
                flush=True,
            )

    def _send(self, fn: LocalFunction, arn: str, payload: Any, error: InvocationError | None = None) -> bool:
        """Deliver to an SQS queue, SNS topic, Lambda function or event bus, as Lambda does, with the function's
        role; False (and a log line) when the role may not (AWS: DeadLetterErrors / DestinationDeliveryFailures)."""
        try:
            self._deliver(fn, arn, payload, error)
        except ClientError as exc:
            print(
                f"{fn.name}: the failed event could not be delivered to {arn} with the function's role "
                f"({exc.response.get('Error', {}).get('Code')}): the event is LOST (DeadLetterErrors)",
                flush=True,
            )
            return False
        return True

    def _deliver(self, fn: LocalFunction, arn: str, payload: Any, error: InvocationError | None) -> None:
        service, name = _arn_parts(arn)
        body = json.dumps(payload)
        # A dead-letter queue gets the event itself, with the error in message attributes.
        attributes = (
            {
                "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {"DataType": "String", "StringValue": error.error_message[:1000] or "-"},
            }
            if error is not None
            else {}
        )
        if service == "sqs":
            url = self.clients("sqs").get_queue_url(QueueName=name)["QueueUrl"]
            self.function_clients("sqs", fn.logical_id).send_message(
                QueueUrl=url, MessageBody=body, MessageAttributes=attributes
            )
        elif service == "sns":
            self.function_clients("sns", fn.logical_id).publish(
                TopicArn=arn, Message=body, MessageAttributes=attributes
            )
        elif service == "events":
            self.function_clients("events", fn.logical_id).put_events(
                Entries=[
                    {
                        "EventBusName": name,
                        "Source": "lambda",
                        "DetailType": "Lambda Function Invocation Result - Failure",
                        "Detail": body,
                    }
                ]
            )
        elif service == "lambda":
            target = next(lid for lid, fn in self.invoker.functions.items() if fn.name == name)
            self.invoke(target, payload)
        else:
            print(f"asynchronous invocation: unsupported destination {arn}; the event is dropped", flush=True)


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
        asynchronous: AsyncInvocations | None = None,
    ) -> None:
        if mapping.kind != "sqs" and asynchronous is None:
            raise ValueError(f"the {mapping.kind} events of {mapping.function} are asynchronous invocations")
        self.m = mapping
        self.asynchronous = asynchronous
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
                self._settle(messages, self._invoke_sqs(messages))
            else:
                # Lambda takes an asynchronous event off its queue at once; retries are its own (AsyncInvocations).
                self._settle(messages, set())
                for message in messages:
                    self._invoke_async(message)
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

    def _invoke_async(self, message: dict[str, Any]) -> None:
        assert self.asynchronous is not None
        body = json.loads(message["Body"])
        if self.m.kind == "s3":
            if body.get("Event") == "s3:TestEvent":
                return
            event = {"Records": s3_records(body)}
        else:
            event = body
        sent_ms = message.get("Attributes", {}).get("SentTimestamp")
        self.asynchronous.invoke(self.m.function, event, queued_at=int(sent_ms) / 1000 if sent_ms else None)

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
