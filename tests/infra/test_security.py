"""Least privilege, cdk-nag AwsSolutions and cfn-lint on the synthesized template."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aws_cdk import CfnResource, Validations
from cfnlint.api import lint_file
from constructs import IConstruct

import infra.nag
from tests.infra.conftest import Synth, synthesize


def _statements(synth: Synth, function_construct: Any) -> list[dict[str, Any]]:
    fn = synth.template["Resources"][synth.logical_id(function_construct)]
    role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    role = synth.template["Resources"][role_id]["Properties"]
    assert not role.get("ManagedPolicyArns"), "functions get no managed policies"
    statements: list[dict[str, Any]] = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    # @aws-cdk/aws-iam:minimizePolicies merges statements that share actions: one statement per resource again.
    return [
        {**s, "Resource": resource}
        for s in statements
        for resource in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def _resources(statement: dict[str, Any]) -> str:
    return json.dumps(statement["Resource"])


def test_worker_can_write_its_parts_and_nothing_more_in_the_bucket(synth: Synth) -> None:
    # Given the worker's IAM statements
    statements = _statements(synth, synth.stack.pipeline.worker)
    actions = {a for s in statements for a in _actions(s)}

    # Then it cannot delete or change tables, and reads nothing from the bucket (not results/, not anything)
    jobs = json.dumps({"Fn::GetAtt": [synth.logical_id(synth.stack.storage.table), "Arn"]})
    cache = json.dumps({"Fn::GetAtt": [synth.logical_id(synth.stack.enrichment.cache), "Arn"]})
    table_actions = {(a, _resources(s)) for s in statements for a in _actions(s) if a.startswith("dynamodb:")}
    assert table_actions == {
        ("dynamodb:GetItem", jobs),
        ("dynamodb:UpdateItem", jobs),
        # And on the answer cache only batch reads and writes of items
        ("dynamodb:BatchGetItem", cache),
        ("dynamodb:BatchWriteItem", cache),
    }
    assert "dynamodb:DeleteTable" not in actions
    s3_statements = [s for s in statements if any(a.startswith("s3:") for a in _actions(s))]
    assert [_actions(s) for s in s3_statements] == [["s3:PutObject"]]
    assert all("/parts/*" in _resources(s) and "results/" not in _resources(s) for s in s3_statements)


def test_stream_function_can_read_and_charge_accounts_and_nothing_more(synth: Synth) -> None:
    # Given the stream function's IAM statements
    fn = synth.stack.streaming.function
    statements = _statements(synth, fn)
    log_group = synth.template["Resources"][synth.logical_id(fn)]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    table = {"Fn::GetAtt": [synth.logical_id(synth.stack.storage.table), "Arn"]}
    cache = {"Fn::GetAtt": [synth.logical_id(synth.stack.enrichment.cache), "Arn"]}
    secret = {"Ref": synth.logical_id(synth.stack.enrichment.secret)}

    # Then it writes its own logs (no X-Ray without bulkapi:tracing), reads items (key, balance) and updates
    # them (the charge) on the table
    granted = {(action, json.dumps(s["Resource"], sort_keys=True)) for s in statements for action in _actions(s)}
    assert granted == {
        ("logs:CreateLogStream", json.dumps({"Fn::GetAtt": [log_group, "Arn"]}, sort_keys=True)),
        ("logs:PutLogEvents", json.dumps({"Fn::GetAtt": [log_group, "Arn"]}, sort_keys=True)),
        ("dynamodb:GetItem", json.dumps(table, sort_keys=True)),
        ("dynamodb:UpdateItem", json.dumps(table, sort_keys=True)),
        ("dynamodb:PutItem", json.dumps(table, sort_keys=True)),
        ("dynamodb:DeleteItem", json.dumps(table, sort_keys=True)),
        # And it reads and writes cached provider answers, and reads the provider keys
        ("dynamodb:BatchGetItem", json.dumps(cache, sort_keys=True)),
        ("dynamodb:BatchWriteItem", json.dumps(cache, sort_keys=True)),
        ("secretsmanager:GetSecretValue", json.dumps(secret, sort_keys=True)),
    }
    assert all(s["Effect"] == "Allow" and "Condition" not in s for s in statements)


LIST = "s3:ListBucketVersions"
# Every purge deletes named versions (DeleteObjects with VersionId): s3:DeleteObjectVersion only.
PURGE = {"s3:DeleteObjectVersion"}


def test_each_function_is_granted_only_its_prefixes(synth: Synth) -> None:
    expected = {
        synth.stack.api.function: {
            "uploads/": {"s3:PutObject", *PURGE, LIST},
            "results/": {"s3:GetObject", *PURGE, LIST},
            "parts/": {*PURGE, LIST},
            "drop/": {*PURGE, LIST},
        },
        synth.stack.pipeline.splitter: {
            "uploads/": {"s3:GetObject", *PURGE, LIST},
            "drop/": {"s3:GetObject", "s3:DeleteObject"},
            "rejected/": {"s3:PutObject"},
        },
        synth.stack.pipeline.dead_letter: {"parts/": {"s3:PutObject"}},
        synth.stack.finalizer.function: {
            "parts/": {"s3:GetObject", "s3:DeleteObjectVersion", "s3:ListBucketVersions"},
            "results/": {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"},
        },
        synth.stack.fetch.function: {"uploads/": {"s3:PutObject", "s3:AbortMultipartUpload"}},
        synth.stack.webhooks.function: {},
        synth.stack.streaming.function: {},
        synth.stack.sweeper.function: {"(bucket)": {"s3:ListBucket"}, "uploads/": {"s3:GetObject"}},
        synth.stack.downloads.function: {
            "results/": {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", *PURGE, LIST},
        },
    }
    for fn, prefixes in expected.items():
        granted: dict[str, set[str]] = {}
        for statement in _statements(synth, fn):
            s3_actions = {a for a in _actions(statement) if a.startswith("s3:")}
            if s3_actions and "Condition" in statement:
                # A bucket-level action (listing) is held to a prefix by its condition.
                for prefix in statement["Condition"]["StringLike"]["s3:prefix"]:
                    granted.setdefault(prefix.rstrip("*"), set()).update(s3_actions)
            elif s3_actions and isinstance(statement["Resource"], dict) and "Fn::GetAtt" in statement["Resource"]:
                # A bucket-level action on the bucket itself (its configuration): no objects.
                granted.setdefault("(bucket)", set()).update(s3_actions)
            elif s3_actions:
                prefix = statement["Resource"]["Fn::Join"][1][1].strip("/*") + "/"
                granted.setdefault(prefix, set()).update(s3_actions)
        assert granted == prefixes, fn.node.path


def test_only_functions_that_delete_list_object_versions_and_only_under_their_prefixes(synth: Synth) -> None:
    # Given every function's ListBucketVersions statements (a bucket-level action, held to prefixes by a condition)
    listing = {
        fn.node.path: statement
        for fn in synth.stack.functions.built.values()
        for statement in _statements(synth, fn)
        if LIST in _actions(statement)
    }
    # Then only the api (a purge), the variants function (a variant of a purged job), the finalizer (the part
    # files of an ended job) and the splitter (an upload whose job is gone) list versions, each only under the
    # prefixes it deletes from
    api, builder = synth.stack.api.function.node.path, synth.stack.downloads.function.node.path
    finalizer = synth.stack.finalizer.function.node.path
    splitter = synth.stack.pipeline.splitter.node.path
    assert all(_actions(statement) == [LIST] for statement in listing.values())
    prefixes = {path: sorted(s["Condition"]["StringLike"]["s3:prefix"]) for path, s in listing.items()}
    assert prefixes == {
        api: ["drop/*", "parts/*", "results/*", "uploads/*"],
        builder: ["results/*"],
        finalizer: ["parts/*"],
        splitter: ["uploads/*"],
    }


def test_no_policy_grants_wildcard_actions(synth: Synth) -> None:
    for policy_id, policy in synth.resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert not [a for a in _actions(statement) if "*" in a], policy_id


def test_cdk_nag_aws_solutions_has_no_unacknowledged_findings(synth: Synth) -> None:
    report = synth.report
    findings = [
        f"{v['ruleName']} {c['constructPath']}"
        for plugin in (report or {}).get("pluginReports", [])
        for v in plugin["violations"]
        for c in v["violatingConstructs"]
    ]
    assert synth.validation_error is None and not findings, "\n".join(findings)


def _acknowledgements(construct: IConstruct) -> list[tuple[IConstruct, dict[str, str]]]:
    found = [
        (construct, dict(entry.data))
        for entry in construct.node.metadata
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    ]
    for child in construct.node.children:
        found += _acknowledgements(child)
    return found


def test_each_acknowledgement_is_on_one_resource_with_a_specific_reason(synth: Synth) -> None:
    acknowledged = _acknowledgements(synth.stack.node.root)
    assert acknowledged
    reasons: set[str] = set()
    for construct, rules in acknowledged:
        # On the CloudFormation resource itself: not the app, the stack or a construct covering many resources.
        assert isinstance(construct, CfnResource), construct.node.path
        for rule, reason in rules.items():
            assert "AwsSolutions-" in rule and len(reason) >= 40, (construct.node.path, rule)
            reasons.add(reason)
    assert len(reasons) > 5  # reasons are written per rule and resource, not one blanket text


def test_cfn_lint_finds_no_errors(synth: Synth) -> None:
    matches = lint_file(synth.outdir / f"{synth.stack.stack_name}.template.json")
    errors = [f"{m.rule.id} {m.message} ({m.path})" for m in matches if m.rule.id.startswith("E")]
    assert not errors, "\n".join(errors)


class _IgnoringAcknowledgements:
    """Stands in for aws_cdk.Validations inside infra.nag: plugins are added, acknowledgements are dropped."""

    @staticmethod
    def of(scope: IConstruct) -> Any:
        real = Validations.of(scope)
        return SimpleNamespace(acknowledge=lambda *_: None, add_plugins=real.add_plugins)


def test_every_acknowledgement_silences_a_finding_that_exists(
    synth: Synth, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given what the stack acknowledges: (resource path, rule with its finding); CDK keys them "Annotation::<rule>"
    acknowledged = {
        (construct.node.path, rule.removeprefix("Annotation::"))
        for construct, rules in _acknowledgements(synth.stack.node.root)
        for rule in rules
    }
    # When the same stack is synthesized with every acknowledgement dropped
    monkeypatch.setattr(infra.nag, "Validations", _IgnoringAcknowledgements)
    bare = synthesize(tmp_path)
    findings = {
        (c["constructPath"], v["ruleName"])
        for plugin in (bare.report or {}).get("pluginReports", [])
        for v in plugin["violations"]
        for c in v["violatingConstructs"]
    }
    # Then each acknowledgement corresponds to a real finding: none is stale
    assert acknowledged and acknowledged <= findings, sorted(acknowledged - findings)


def test_fetcher_writes_only_uploads_and_queues_no_work(synth: Synth) -> None:
    # Given the fetcher's IAM statements (the one function that downloads what a customer names)
    fn = synth.stack.fetch.function
    statements = _statements(synth, fn)
    actions = {a for s in statements for a in _actions(s)}
    # Then in the bucket it may only write under uploads/ (and abort its own multipart upload)
    s3_statements = [s for s in statements if any(a.startswith("s3:") for a in _actions(s))]
    assert [sorted(_actions(s)) for s in s3_statements] == [["s3:AbortMultipartUpload", "s3:PutObject"]]
    assert all("/uploads/*" in _resources(s) for s in s3_statements)
    # And it reads and moves the job and its account's fetch slots, starts the finalizer of a job whose fetch failed,
    # sends messages only to its own queue (a fetch waiting for a slot), and nothing else
    assert {a for a in actions if a.startswith("dynamodb:")} == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
    }
    sends = [s for s in statements if any(a.startswith("sqs:Send") for a in _actions(s))]
    assert {_resources(s) for s in sends} == {
        json.dumps({"Fn::GetAtt": [synth.logical_id(synth.stack.fetch.queue), "Arn"]})
    }
    assert {a for a in actions if a.startswith("states:")} == {"states:StartExecution"}
    # And its settings ask for public https targets only (the local runtime's loopback rule is not deployed)
    env = synth.template["Resources"][synth.logical_id(fn)]["Properties"]["Environment"]["Variables"]
    assert "BULKAPI_ALLOW_PRIVATE_TARGETS" not in env and env["BULKAPI_MAX_UPLOAD_OBJECT_BYTES"] == str(1024**3)


def test_api_may_queue_fetches_but_not_work(synth: Synth) -> None:
    statements = _statements(synth, synth.stack.api.function)
    sends = [s for s in statements if "sqs:SendMessage" in _actions(s)]
    queues = {
        json.dumps({"Fn::GetAtt": [synth.logical_id(queue), "Arn"]})
        for queue in (synth.stack.fetch.queue, synth.stack.downloads.queue)
    }
    assert {_resources(s) for s in sends} == queues
