"""The work queue adapter against moto: every SendMessageBatch within SQS's documented limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.adapters.messaging import MAX_CALL_BYTES, MAX_MESSAGE_BYTES, WorkQueue
from functions.errors import StoreError


@pytest.fixture()
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    # moto's mock, not a local runtime this worker may have started for another file (its endpoint and keys are in
    # the environment; a runtime answers only its own keys)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        url = client.create_queue(QueueName="work")["QueueUrl"]
        yield client, url


def drain(client: Any, url: str) -> list[str]:
    bodies: list[str] = []
    while True:
        got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        bodies += [m["Body"] for m in got]
        client.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
        )


class Recording:
    """Passes calls to moto's SQS and keeps each SendMessageBatch's entries."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[list[dict[str, str]]] = []

    def send_message_batch(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs["Entries"])
        return self.client.send_message_batch(**kwargs)


def test_ten_messages_of_200_kb_are_sent_in_calls_under_one_mib(sqs: tuple[Any, str]) -> None:
    # Given ten work messages of 200 KB each (2 MB: one SendMessageBatch would be refused, BatchRequestTooLong)
    client, url = sqs
    bodies = [f"{i:03d}" + "x" * 199_997 for i in range(10)]
    recording = Recording(client)

    # When they are sent
    WorkQueue(url, client=recording).send(bodies)

    # Then every call stays within SQS's batch limits, and every message arrives once
    assert all(len(call) <= 10 for call in recording.calls)
    assert all(sum(len(e["MessageBody"].encode()) for e in call) <= MAX_CALL_BYTES for call in recording.calls)
    assert sorted(drain(client, url)) == sorted(bodies)


def test_call_size_is_counted_in_utf8_bytes_not_characters(sqs: tuple[Any, str]) -> None:
    # Given ten messages of 100,000 three-byte characters each (300 KB each in UTF-8, 100 K characters)
    client, url = sqs
    bodies = [str(i) + "語" * 80_000 for i in range(10)]
    recording = Recording(client)

    # When they are sent
    WorkQueue(url, client=recording).send(bodies)

    # Then no call is over 1 MiB as SQS counts it (bytes), and all arrive
    assert all(sum(len(e["MessageBody"].encode()) for e in call) <= MAX_CALL_BYTES for call in recording.calls)
    assert len(drain(client, url)) == 10


def test_a_message_over_the_limit_is_refused_before_any_call(sqs: tuple[Any, str]) -> None:
    # Given one message over the per-message limit
    client, url = sqs
    recording = Recording(client)

    # When it is sent, then the adapter refuses it with the project's error, sending nothing
    with pytest.raises(StoreError):
        WorkQueue(url, client=recording).send(["ok", "x" * (MAX_MESSAGE_BYTES + 1)])
    assert recording.calls == []
