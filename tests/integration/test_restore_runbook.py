"""README's runbook "Restoring the jobs table to a point in time", step by step, against moto."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.config import StackConfig
from infra.storage import JOBS_TABLE_ID
from local.template import load_template

README = Path(__file__).resolve().parents[2] / "README.md"
REGION = "us-east-1"


def runbook_commands() -> list[list[str]]:
    """The `aws dynamodb ...` commands of README's restore runbook, as argument lists."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("#### Restoring the jobs table to a point in time") :]
    block = section[section.index("```bash") + len("```bash") : section.index("```", section.index("```bash") + 7)]
    joined = block.replace("\\\n", " ")
    return [shlex.split(line)[2:] for line in joined.splitlines() if line.strip().startswith("aws dynamodb ")]


def _create_params(resource: dict[str, Any], name: str) -> dict[str, Any]:
    """CreateTable parameters of the jobs table as the stack declares it (AWS::DynamoDB::GlobalTable)."""
    props = resource["Properties"]
    return {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [
            {"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": g["Projection"]}
            for g in props["GlobalSecondaryIndexes"]
        ],
    }


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A DynamoDB client on an in-process moto."""
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("dynamodb", region_name=REGION)


def test_the_restore_runbook_brings_back_the_items_and_the_settings_a_restore_drops(dynamodb: Any) -> None:
    # Given the deployed jobs table, as the stack declares it, with point-in-time recovery and a customer in it
    template = load_template()
    source, target = "BulkApi-prod-StorageJobs", "BulkApi-prod-StorageJobs-restored"
    dynamodb.create_table(**_create_params(template["Resources"][JOBS_TABLE_ID], source))
    dynamodb.update_continuous_backups(
        TableName=source, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    dynamodb.put_item(
        TableName=source, Item={"pk": {"S": "ACCOUNT#acct_1"}, "sk": {"S": "META"}, "credits": {"N": "5"}}
    )
    # When the runbook's commands run, in its order
    commands = runbook_commands()
    assert [c[0] for c in commands] == [
        "restore-table-to-point-in-time",
        "wait",
        "update-time-to-live",
        "update-continuous-backups",
        "update-table",
    ]
    assert "--billing-mode-override" in commands[0] and "--deletion-protection-enabled" in commands[4]
    dynamodb.restore_table_to_point_in_time(
        SourceTableName=source,
        TargetTableName=target,
        RestoreDateTime=datetime.now(UTC),
        BillingModeOverride="PAY_PER_REQUEST",
    )
    dynamodb.get_waiter("table_exists").wait(TableName=target, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ttl_spec = dict(re.findall(r"(\w+)=(\w+)", commands[2][commands[2].index("--time-to-live-specification") + 1]))
    dynamodb.update_time_to_live(
        TableName=target,
        TimeToLiveSpecification={"Enabled": ttl_spec["Enabled"] == "true", "AttributeName": ttl_spec["AttributeName"]},
    )
    dynamodb.update_continuous_backups(
        TableName=target, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    dynamodb.update_table(TableName=target, DeletionProtectionEnabled=True)
    # Then the restored table has the customer, the stack's keys and indexes, and what a restore leaves off
    item = dynamodb.get_item(TableName=target, Key={"pk": {"S": "ACCOUNT#acct_1"}, "sk": {"S": "META"}})["Item"]
    assert item["credits"] == {"N": "5"}
    table = dynamodb.describe_table(TableName=target)["Table"]
    assert table["KeySchema"] == template["Resources"][JOBS_TABLE_ID]["Properties"]["KeySchema"]
    assert {g["IndexName"] for g in table.get("GlobalSecondaryIndexes", [])} == {"by_account", "active"}
    assert table.get("DeletionProtectionEnabled") is True
    ttl = dynamodb.describe_time_to_live(TableName=target)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    backups = dynamodb.describe_continuous_backups(TableName=target)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    # And the stack can be pointed at it (tests/infra/test_storage.py checks what the template then names)
    assert StackConfig(existing_jobs_table=target).existing_jobs_table == target
