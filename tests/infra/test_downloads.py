"""The variant build path: the api function queues builds, the variants function consumes them with a DLQ."""

from __future__ import annotations

from tests.infra.conftest import Synth


def test_the_api_queues_variant_builds_that_the_variants_function_consumes(synth: Synth) -> None:
    # Given the api function, the variants function and the event source mappings
    functions = synth.resources("AWS::Lambda::Function")
    api = functions[synth.logical_id(synth.stack.api.function)]["Properties"]
    builder_id = synth.logical_id(synth.stack.downloads.function)
    builder = functions[builder_id]["Properties"]
    queue_id = synth.logical_id(synth.stack.downloads.queue)
    # Then the api function knows the variant queue and its result retention
    env = api["Environment"]["Variables"]
    assert env["BULKAPI_VARIANT_QUEUE_URL"] == {"Ref": queue_id}
    assert env["BULKAPI_RETENTION_DAYS"] == str(synth.config.retention_days)
    # And the variants function runs the variants handler, one request at a time, reporting failures per message
    assert builder["Handler"] == "functions.handlers.variants.lambda_handler" and builder["Timeout"] == 900
    mapping = next(
        m["Properties"]
        for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": builder_id}
    )
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert mapping["BatchSize"] == 1 and mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # And a request that keeps failing ends in the variant DLQ
    queue = synth.resources("AWS::SQS::Queue")[queue_id]["Properties"]
    dlq_id = synth.logical_id(synth.stack.downloads.dlq)
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 5
