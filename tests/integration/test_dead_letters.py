"""The functions S3 and EventBridge invoke asynchronously, as the local runtime builds them from the template: an
event Lambda gives up on lands in the function's own dead-letter queue, in the shape AWS gives it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.observability import ASYNC_HANDLERS
from local.lambdas import InvocationError
from local.resources import LocalFunction
from local.runtime import LocalRuntime
from local.wiring import AsyncInvocations
from tests.helpers import wait_for


class AlwaysFailing:
    """The runtime's functions, each failing every invocation."""

    def __init__(self, functions: dict[str, LocalFunction]) -> None:
        self.functions = functions

    def invoke(self, logical_id: str, event: Any) -> Any:
        raise InvocationError("RuntimeError", f"{logical_id} is down for this test")


@pytest.mark.parametrize("handler", ASYNC_HANDLERS)
def test_an_event_given_up_on_lands_in_the_functions_dead_letter_queue(runtime: LocalRuntime, handler: str) -> None:
    assert runtime.topology is not None
    function = runtime.function_id(f"functions.handlers.{handler}.lambda_handler")
    # Given the function's asynchronous settings as read from the template: a dead-letter queue, no destination
    config = runtime.topology.functions[function].asynchronous
    assert config.dead_letter is not None and config.on_failure is None
    (url,) = [q["url"] for q in runtime.topology.queues.values() if q["arn"] == config.dead_letter]
    sqs = runtime.client("sqs")
    # And its role may send to that queue (Lambda sends with the function's role, as AsyncInvocations does)
    probe = runtime.function_client("sqs", function).send_message(QueueUrl=url, MessageBody="{}")["MessageId"]
    # (a role without the grant may not: the worker's)
    worker = runtime.function_client("sqs", runtime.function_id("functions.handlers.worker.lambda_handler"))
    with pytest.raises(ClientError, match="AccessDenied"):
        worker.send_message(QueueUrl=url, MessageBody="{}")

    # When an event of it fails every attempt (no waits between the retries)
    marker = str(uuid.uuid4())
    event = {"detail-type": "test", "detail": {"marker": marker}}
    failing = AlwaysFailing(runtime.topology.functions)
    AsyncInvocations(
        failing,  # type: ignore[arg-type]
        runtime.client,
        retry_delay=0,
        function_clients=runtime.function_client,
    ).invoke(function, event)

    # Then the queue holds the event itself, with the error in its message attributes (the probe is removed too)
    seen: dict[str, dict[str, Any]] = {}

    def both() -> bool:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
        for message in messages:
            mine = "probe" if message["MessageId"] == probe else "event" if json.loads(message["Body"]) == event else ""
            if mine:
                seen[mine] = message
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return len(seen) == 2

    wait_for(both, timeout=30, interval=0.2, what=f"the {handler}'s event in its dead-letter queue")
    attributes = seen["event"]["MessageAttributes"]
    assert attributes["ErrorMessage"]["StringValue"] == f"{function} is down for this test"


def test_an_event_whose_role_may_not_send_to_the_dead_letter_queue_is_lost_as_in_aws(
    runtime: LocalRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the splitter's failed event sent with a role that has no grant on its queue (the worker's)
    function = runtime.function_id("functions.handlers.splitter.lambda_handler")
    worker = runtime.function_id("functions.handlers.worker.lambda_handler")
    assert runtime.topology is not None
    invocations = AsyncInvocations(
        AlwaysFailing(runtime.topology.functions),  # type: ignore[arg-type]
        runtime.client,
        retry_delay=0,
        function_clients=lambda service, _function: runtime.function_client(service, worker),
    )
    # When it fails every attempt
    invocations.invoke(function, {"detail": {"marker": str(uuid.uuid4())}})
    # Then it is lost, as AWS loses it (DeadLetterErrors), and the log says why (the retries run on timers)
    wait_for(lambda: invocations.given_up == [(function, "dropped")], timeout=30, what="the event given up on")
    assert "could not be delivered" in capsys.readouterr().out
