"""Asynchronous invocations as Lambda makes them (local/wiring.py AsyncInvocations): retries from the function's
EventInvokeConfig, then its on-failure destination, its dead-letter queue, or nowhere (dropped, and said so)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from local.lambdas import InvocationError
from local.resources import AsyncConfig, LocalFunction
from local.wiring import AsyncInvocations
from tests.helpers import wait_for

EVENT = {"detail-type": "bulk_job.completed", "detail": {"id": "job_1"}}


class FailingInvoker:
    """Runs nothing: the first `failures` invocations of each function raise, the later ones succeed."""

    def __init__(self, functions: dict[str, LocalFunction], failures: int = 1_000) -> None:
        self.functions = functions
        self.failures = failures
        self.calls: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def invoke(self, logical_id: str, event: Any) -> Any:
        with self._lock:
            self.calls.append((logical_id, event))
            if len(self.calls) <= self.failures:
                raise InvocationError("RuntimeError", "the sender is down")
        return {"ok": True}


class FakeSqs:
    """The two SQS calls a destination needs."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def get_queue_url(self, QueueName: str) -> dict[str, str]:
        return {"QueueUrl": f"http://local/{QueueName}"}

    def send_message(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)


def function(**config: Any) -> dict[str, LocalFunction]:
    """One function, Sender, with this asynchronous configuration."""
    return {"Sender": LocalFunction("Sender", "bulkapi-local-sender", "h", {}, 60, asynchronous=AsyncConfig(**config))}


def run(invoker: FailingInvoker, sqs: FakeSqs | None = None, queued_at: float | None = None) -> AsyncInvocations:
    """Invoke Sender asynchronously once and wait until Lambda is done with the event (succeeded or gave up)."""
    asynchronous = AsyncInvocations(invoker, lambda service: sqs, retry_delay=0.01)  # type: ignore[arg-type]
    asynchronous.invoke("Sender", EVENT, queued_at=queued_at)
    wait_for(
        lambda: asynchronous.given_up or (invoker.calls and len(invoker.calls) > invoker.failures),
        timeout=10,
        what="the event's last attempt",
    )
    time.sleep(0.1)  # a further (wrong) attempt would show here
    return asynchronous


def test_without_an_invoke_config_an_event_is_tried_three_times_then_dropped_with_a_log_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a function with no EventInvokeConfig (AWS's defaults: 2 retries) that always fails
    invoker = FailingInvoker(function())

    # When it is invoked asynchronously
    asynchronous = run(invoker)

    # Then Lambda tried it 3 times, the same event each time, and dropped it, saying so
    assert [event for _, event in invoker.calls] == [EVENT] * 3
    assert asynchronous.given_up == [("Sender", "dropped")]
    assert "failed 3 times (RetriesExhausted, RuntimeError): the event is DROPPED" in capsys.readouterr().out


def test_a_retry_that_succeeds_ends_the_event() -> None:
    # Given a function that fails once, then works
    invoker = FailingInvoker(function(), failures=1)

    # When it is invoked asynchronously
    asynchronous = run(invoker)

    # Then the retry ran and nothing was given up on
    assert len(invoker.calls) == 2 and asynchronous.given_up == []


def test_the_invoke_configs_retries_and_on_failure_destination_are_used() -> None:
    # Given a function with 0 retries and an SQS on-failure destination
    sqs = FakeSqs()
    invoker = FailingInvoker(function(max_retries=0, on_failure="arn:aws:sqs:us-east-1:123456789012:failures"))

    # When it is invoked asynchronously
    asynchronous = run(invoker, sqs)

    # Then it was tried once, and the destination got Lambda's invocation record: the event and the error
    assert len(invoker.calls) == 1 and asynchronous.given_up == [("Sender", "destination")]
    (message,) = sqs.sent
    assert message["QueueUrl"] == "http://local/failures"
    record = json.loads(message["MessageBody"])
    assert record["requestPayload"] == EVENT
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestContext"]["functionArn"].endswith(":function:bulkapi-local-sender:$LATEST")
    assert record["responsePayload"]["errorMessage"] == "the sender is down"


def test_an_event_older_than_its_maximum_age_is_not_retried() -> None:
    # Given a function whose events may be at most 60 s old, and an event queued 59.999 s ago
    sqs = FakeSqs()
    invoker = FailingInvoker(function(max_event_age=60, on_failure="arn:aws:sqs:us-east-1:123456789012:failures"))

    # When its first attempt fails
    run(invoker, sqs, queued_at=time.time() - 59.999)

    # Then it is not retried: it went to the destination as EventAgeExceeded
    assert len(invoker.calls) == 1
    assert json.loads(sqs.sent[0]["MessageBody"])["requestContext"]["condition"] == "EventAgeExceeded"


def test_a_dead_letter_queue_gets_the_event_itself_with_the_error_in_its_attributes() -> None:
    # Given a function with a DeadLetterConfig and no destination
    sqs = FakeSqs()
    invoker = FailingInvoker(function(dead_letter="arn:aws:sqs:us-east-1:123456789012:dlq"))

    # When it keeps failing
    asynchronous = run(invoker, sqs)

    # Then the DLQ got the event as it was, and the error as message attributes
    assert asynchronous.given_up == [("Sender", "dead_letter")]
    (message,) = sqs.sent
    assert json.loads(message["MessageBody"]) == EVENT
    assert message["MessageAttributes"]["ErrorMessage"]["StringValue"] == "the sender is down"


def test_with_both_a_dead_letter_queue_and_a_destination_one_failure_is_sent_to_each() -> None:
    # Given a function with a DeadLetterConfig and an on-failure destination (what the stack avoids:
    # tests/infra/test_pipeline.py, no function has both)
    sqs = FakeSqs()
    invoker = FailingInvoker(
        function(
            dead_letter="arn:aws:sqs:us-east-1:123456789012:dlq",
            on_failure="arn:aws:sqs:us-east-1:123456789012:failures",
        )
    )

    # When it keeps failing
    asynchronous = run(invoker, sqs)

    # Then, as in AWS, the one failed event lands twice: the invocation record in the destination, the event in the DLQ
    assert asynchronous.given_up == [("Sender", "destination and dead_letter")]
    assert sorted(m["QueueUrl"] for m in sqs.sent) == ["http://local/dlq", "http://local/failures"]
