"""The pipeline's topology: notifications, the work queue and its DLQ, the worker's event source."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Capture, Match, Matcher, Template

from infra.config import StackConfig, cdk_json_context
from infra.pipeline import VISIBILITY_FACTOR
from local import template as local_template
from tests.infra.conftest import ALARM_EMAIL, Synth


def _function_by_handler(synth: Synth, handler: str) -> tuple[str, dict[str, Any]]:
    matches = [
        (lid, res)
        for lid, res in synth.resources("AWS::Lambda::Function").items()
        if res["Properties"]["Handler"] == f"functions.handlers.{handler}.lambda_handler"
    ]
    assert len(matches) == 1, f"expected one {handler} function, found {[lid for lid, _ in matches]}"
    return matches[0]


def test_worker_event_source_reports_batch_item_failures_with_configured_batch_and_concurrency(
    synth: Synth, template: Template
) -> None:
    # Given the worker and the work queue of the synthesized stack
    worker_id, _ = _function_by_handler(synth, "worker")
    queue_id = synth.logical_id(synth.stack.pipeline.queue)

    # Then its event source mapping reports partial failures, with batch size and concurrency from StackConfig
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": worker_id},
            "EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": synth.config.worker_batch_size,
            "ScalingConfig": {"MaximumConcurrency": synth.config.worker_max_concurrency},
        },
    )


def test_work_queue_redrives_to_an_encrypted_dlq_after_at_least_five_receives(synth: Synth, template: Template) -> None:
    dlq_id = synth.logical_id(synth.stack.pipeline.dlq)
    receives = Capture()

    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": receives},
            "SqsManagedSseEnabled": True,
        },
    )
    assert receives.as_number() >= 5
    template.has_resource_properties("AWS::SQS::Queue", {"SqsManagedSseEnabled": True})
    # Every queue is TLS-only (a Deny on aws:SecureTransport=false).
    for queue_id in synth.resources("AWS::SQS::Queue"):
        template.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [{"Ref": queue_id}],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                },
            },
        )


def test_visibility_timeouts_are_at_least_six_times_their_consumers_timeout(synth: Synth) -> None:
    # Given every SQS event source mapping of the template
    queues = synth.resources("AWS::SQS::Queue")
    functions = synth.resources("AWS::Lambda::Function")
    mappings = synth.resources("AWS::Lambda::EventSourceMapping").values()
    assert len(mappings) == 5  # worker, dead-letter handler, webhook retries, variant builds, fetcher

    for mapping in mappings:
        props = mapping["Properties"]
        queue = queues[props["EventSourceArn"]["Fn::GetAtt"][0]]
        function = functions[props["FunctionName"]["Ref"]]
        # Then the queue hides a message long enough for six attempts of its consumer
        assert queue["Properties"]["VisibilityTimeout"] >= VISIBILITY_FACTOR * function["Properties"]["Timeout"]


def test_uploads_and_drops_notify_the_splitter(synth: Synth, template: Template) -> None:
    splitter_id, _ = _function_by_handler(synth, "splitter")

    def on(prefix: str) -> Matcher:
        return Match.object_like(
            {
                "Events": ["s3:ObjectCreated:*"],
                "LambdaFunctionArn": {"Fn::GetAtt": [splitter_id, "Arn"]},
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
            }
        )

    template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {"NotificationConfiguration": {"LambdaFunctionConfigurations": [on("uploads/"), on("drop/")]}},
    )


def test_webhook_rule_routes_bulk_job_events_to_the_sender_with_a_dlq(synth: Synth, template: Template) -> None:
    sender_id, _ = _function_by_handler(synth, "webhooks")
    dlq_id = synth.logical_id(synth.stack.webhooks.dlq)

    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {"source": ["bulkapi"], "detail-type": [{"prefix": "bulk_job."}]},
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [sender_id, "Arn"]},
                        "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}},
                        "RetryPolicy": Match.object_like({"MaximumRetryAttempts": Match.any_value()}),
                    }
                )
            ],
        },
    )


def async_targets(synth: Synth) -> dict[str, str]:
    """Functions that S3 or an EventBridge rule invokes asynchronously: logical id -> "S3", "EventBridge" (an event
    pattern: the event carries data) or "schedule" (a tick that carries none)."""
    functions = synth.resources("AWS::Lambda::Function")
    targets: dict[str, str] = {}
    for notification in synth.resources("Custom::S3BucketNotifications").values():
        for cfg in notification["Properties"]["NotificationConfiguration"].get("LambdaFunctionConfigurations", []):
            targets[cfg["LambdaFunctionArn"]["Fn::GetAtt"][0]] = "S3"
    for rule in synth.resources("AWS::Events::Rule").values():
        for target in rule["Properties"].get("Targets", []):
            arn = target["Arn"].get("Fn::GetAtt", [""])[0]
            if arn in functions:
                targets[arn] = "EventBridge" if "EventPattern" in rule["Properties"] else "schedule"
    return targets


def test_every_asynchronously_invoked_function_has_a_dead_letter_queue_its_role_may_send_to(synth: Synth) -> None:
    # Given the functions S3 and EventBridge invoke asynchronously: the splitter, the webhook sender, the sweeper
    targets = async_targets(synth)
    splitter_id, _ = _function_by_handler(synth, "splitter")
    sender_id, _ = _function_by_handler(synth, "webhooks")
    sweeper_id, _ = _function_by_handler(synth, "sweeper")
    assert {splitter_id: "S3", sender_id: "EventBridge", sweeper_id: "schedule"}.items() <= targets.items()
    resources = synth.template["Resources"]
    dead_letters = {}
    for function in targets:
        # Then each has a Lambda DeadLetterConfig naming an SQS queue (else Lambda drops the event after its retries;
        # checkov CKV_AWS_116 looks for exactly this)
        queue = resources[function]["Properties"]["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
        assert resources[queue]["Type"] == "AWS::SQS::Queue"
        dead_letters[function] = queue
        # And its role may send to that queue: as deployed, Lambda sends the event with the function's role
        role = resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
        allowed = [
            s
            for policy in synth.resources("AWS::IAM::Policy").values()
            if {"Ref": role} in policy["Properties"]["Roles"]
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if "sqs:SendMessage" in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        ]
        arns = [r for s in allowed for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]
        assert {"Fn::GetAtt": [queue, "Arn"]} in arns, function
    # And they are the queues the runbook reads: the split failures, the webhook DLQ (also the rule target's DLQ,
    # so both kinds of failed event are replayed alike), and the sweeper's failures
    assert dead_letters[splitter_id] == synth.logical_id(synth.stack.pipeline.split_failures)
    assert dead_letters[sender_id] == synth.logical_id(synth.stack.webhooks.dlq)
    assert dead_letters[sweeper_id] == synth.logical_id(synth.stack.sweeper.failures)


def test_an_event_that_carries_data_is_retried_by_lambda_for_hours_before_it_is_dead_lettered(synth: Synth) -> None:
    # Given the functions invoked with an event that carries data (an S3 object, a job's event)
    carrying = [lid for lid, source in async_targets(synth).items() if source != "schedule"]
    assert len(carrying) >= 2
    configs = {
        c["Properties"]["FunctionName"]["Ref"]: c["Properties"]
        for c in synth.resources("AWS::Lambda::EventInvokeConfig").values()
    }
    for function in carrying:
        # Then Lambda retries it twice and keeps it long enough to ride out a few hours' outage
        config = configs[function]
        assert config["MaximumRetryAttempts"] == 2 and config["MaximumEventAgeInSeconds"] >= 3600


def test_no_function_has_both_a_dead_letter_queue_and_an_on_failure_destination(synth: Synth) -> None:
    # With both, Lambda sends a failed event to each: one failure would be counted (and replayed) twice.
    # Given the functions with an on-failure destination for their asynchronous invocations
    with_destination = {
        c["Properties"]["FunctionName"]["Ref"]
        for c in synth.resources("AWS::Lambda::EventInvokeConfig").values()
        if "OnFailure" in c["Properties"].get("DestinationConfig", {})
    }
    with_dead_letter_queue = {
        lid for lid, fn in synth.resources("AWS::Lambda::Function").items() if "DeadLetterConfig" in fn["Properties"]
    }
    # Then none of them also has a dead-letter queue
    assert len(with_dead_letter_queue) >= 3
    assert with_destination & with_dead_letter_queue == set()


def test_local_runtime_reads_the_same_topology(synth: Synth) -> None:
    # The local runtime builds itself from this very template (local/template.py synthesizes build_app with
    # bundling skipped), so what it must see is: the values of cdk.json, and a re-synthesis when they change.
    # Given the configuration cdk.json declares
    declared = StackConfig.model_validate(
        {
            name: cdk_json_context()[StackConfig.context_key(name)]
            for name in StackConfig.model_fields
            if StackConfig.context_key(name) in cdk_json_context()
        }
    )
    # Then the stack was built with exactly it (and the alarm address the tests deploy with, conftest.py)
    assert synth.config == declared.model_copy(update={"alarm_email": ALARM_EMAIL})
    mapping = next(
        m["Properties"]
        for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"]["Ref"] == synth.logical_id(synth.stack.pipeline.worker)
    )
    assert mapping["BatchSize"] == declared.worker_batch_size
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == declared.worker_max_concurrency
    queue = synth.template["Resources"][synth.logical_id(synth.stack.pipeline.queue)]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == declared.max_receive_count
    # And the local runtime's synthesis cache is keyed on every file the template is built from
    sources = set(local_template.SOURCES)
    assert {"infra", "app.py", "cdk.json", "pyproject.toml", "functions/settings.py"} <= sources
    # And it takes the app's one stack, whatever the stage names it
    assert "build_app(" in local_template._SYNTH and "the_stack(app)" in local_template._SYNTH


def test_webhook_retries_come_back_through_their_own_queue(synth: Synth, template: Template) -> None:
    sender_id, sender = _function_by_handler(synth, "webhooks")
    retry_id = synth.logical_id(synth.stack.webhooks.retry_queue)
    retry_dlq_id = synth.logical_id(synth.stack.webhooks.retry_dlq)

    assert sender["Properties"]["Environment"]["Variables"]["BULKAPI_RETRY_QUEUE_URL"] == {"Ref": retry_id}
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": sender_id},
            "EventSourceArn": {"Fn::GetAtt": [retry_id, "Arn"]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {"RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [retry_dlq_id, "Arn"]}, "maxReceiveCount": 5}},
    )


def test_code_defaults_equal_the_values_cdk_json_ships() -> None:
    # StackConfig's defaults apply when a key is missing from cdk.json; two different "defaults" would be a trap.
    shipped = {k: v for k, v in cdk_json_context().items() if k.startswith("bulkapi:")}
    assert (
        StackConfig.model_validate(
            {
                name: shipped[StackConfig.context_key(name)]
                for name in StackConfig.model_fields
                if StackConfig.context_key(name) in shipped
            }
        )
        == StackConfig()
    )
    assert set(shipped) == {StackConfig.context_key(name) for name in StackConfig.model_fields}
