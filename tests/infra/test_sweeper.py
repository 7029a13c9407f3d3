"""The sweeper: the sparse `active` index, the schedule rule that runs it, and its least-privilege role."""

from __future__ import annotations

import json

from functions.adapters import jobs
from infra.storage import ACTIVE_INDEX
from infra.sweeper import SCHEDULE
from tests.infra.conftest import Synth
from tests.infra.test_security import _actions, _statements


def test_active_index_is_keys_only_on_active_and_created_at(synth: Synth) -> None:
    # The index the sweeper's JobStore.active_job_ids queries, under the name it uses
    assert ACTIVE_INDEX == jobs.ACTIVE_INDEX
    table = synth.template["Resources"][synth.logical_id(synth.stack.storage.table)]["Properties"]
    (index,) = [g for g in table["GlobalSecondaryIndexes"] if g["IndexName"] == ACTIVE_INDEX]
    assert index["KeySchema"] == [
        {"AttributeName": "active", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert (types["active"], types["created_at"]) == ("S", "S")


def test_sweeper_function_runs_the_sweeper_handler_for_up_to_five_minutes(synth: Synth) -> None:
    props = synth.template["Resources"][synth.logical_id(synth.stack.sweeper.function)]["Properties"]
    assert props["Handler"] == "functions.handlers.sweeper.lambda_handler"
    assert (props["Timeout"], props["MemorySize"]) == (300, 512)


def test_schedule_rule_on_the_default_bus_targets_the_sweeper(synth: Synth) -> None:
    sweeper_id = synth.logical_id(synth.stack.sweeper.function)
    rule_id = synth.logical_id(synth.stack.sweeper.rule)
    rule = synth.template["Resources"][rule_id]["Properties"]
    # A schedule, not a pattern, on the default bus (no EventBusName), with the sweeper as its only target
    assert rule["ScheduleExpression"] == f"rate({SCHEDULE.to_minutes()} minutes)" == "rate(5 minutes)"
    assert "EventPattern" not in rule and "EventBusName" not in rule and rule["State"] == "ENABLED"
    assert [t["Arn"] for t in rule["Targets"]] == [{"Fn::GetAtt": [sweeper_id, "Arn"]}]
    # And EventBridge may invoke it for this rule only
    permissions = [
        p["Properties"]
        for p in synth.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [sweeper_id, "Arn"]}
    ]
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [sweeper_id, "Arn"]},
            "Principal": "events.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]},
        }
    ]


def test_sweeper_queries_the_active_index_moves_jobs_and_starts_the_finalizer_only(synth: Synth) -> None:
    # Given the sweeper's IAM statements
    fn = synth.stack.sweeper.function
    statements = _statements(synth, fn)
    log_group = synth.template["Resources"][synth.logical_id(fn)]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    table = {"Fn::GetAtt": [synth.logical_id(synth.stack.storage.table), "Arn"]}
    index = {"Fn::Join": ["", [table, f"/index/{ACTIVE_INDEX}"]]}
    machine = {"Ref": synth.logical_id(synth.stack.finalizer.state_machine)}
    bucket = {"Fn::GetAtt": [synth.logical_id(synth.stack.storage.bucket), "Arn"]}
    uploads = {"Fn::Join": ["", [bucket, "/uploads/*"]]}
    failures = {"Fn::GetAtt": [synth.logical_id(synth.stack.sweeper.failures), "Arn"]}

    def key(value: object) -> str:
        return json.dumps(value, sort_keys=True)

    # Then it writes its own logs (no X-Ray without bulkapi:tracing), queries only the active index, reads and
    # updates job items, starts the finalizer, looks for uploaded files (HEAD under uploads/, with ListBucket so an
    # absent file answers 404), lets Lambda put a run that failed 3 times in its dead-letter queue, and nothing else
    # (no Put/Delete, no Query on the table itself)
    granted = {(action, key(s["Resource"])) for s in statements for action in _actions(s)}
    assert granted == {
        ("logs:CreateLogStream", key({"Fn::GetAtt": [log_group, "Arn"]})),
        ("logs:PutLogEvents", key({"Fn::GetAtt": [log_group, "Arn"]})),
        ("dynamodb:Query", key(index)),
        ("dynamodb:GetItem", key(table)),
        ("dynamodb:UpdateItem", key(table)),
        ("states:StartExecution", key(machine)),
        ("s3:GetObject", key(uploads)),
        ("s3:ListBucket", key(bucket)),
        ("sqs:SendMessage", key(failures)),
    }
    assert all(s["Effect"] == "Allow" and "Condition" not in s for s in statements)


def test_fetches_are_capped_in_all_and_per_account_and_the_sweeper_times_url_jobs_from_their_fetch(
    synth: Synth,
) -> None:
    # Given the fetcher's event source, its settings and the sweeper's
    fetcher = synth.logical_id(synth.stack.fetch.function)
    (mapping,) = [
        m["Properties"]
        for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": fetcher}
    ]
    fetch_env = synth.template["Resources"][fetcher]["Properties"]["Environment"]["Variables"]
    sweeper = synth.template["Resources"][synth.logical_id(synth.stack.sweeper.function)]["Properties"]
    sweep_env = sweeper["Environment"]["Variables"]
    queue = synth.template["Resources"][synth.logical_id(synth.stack.fetch.queue)]["Properties"]
    # Then bulkapi:fetchConcurrency fetches run at once, and one account takes at most its share of them
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == synth.config.fetch_concurrency == 5
    assert fetch_env["BULKAPI_FETCH_SLOTS_PER_ACCOUNT"] == str(synth.config.fetch_concurrency_per_account) == "2"
    # And the sweeper lets a URL job wait for a slot as long as its fetch request lives, and a started fetch its
    # time limit plus the wait before a crashed one is tried again (not 15 minutes from the job's creation)
    assert int(sweep_env["BULKAPI_FETCH_WAIT_SECONDS"]) == queue["MessageRetentionPeriod"] == 86_400
    fetch_timeout = synth.template["Resources"][fetcher]["Properties"]["Timeout"]
    assert int(sweep_env["BULKAPI_FETCH_LEASE_SECONDS"]) == fetch_timeout + queue["VisibilityTimeout"]
