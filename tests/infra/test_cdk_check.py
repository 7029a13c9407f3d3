"""`./dev cdk-check`: a change that would replace or delete a stateful resource is refused, naming it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template
from constructs import Construct

import infra.storage
from infra import cdk_check
from infra.config import StackConfig, cdk_json_context
from infra.storage import StorageConstruct


def _storage_template(*path: str) -> dict[str, Any]:
    """The template of the storage construct (jobs table, bucket, access-log bucket) built at a construct path."""
    stack = Stack(App(context=cdk_json_context()), "S")
    parent: Construct = stack
    for part in path[:-1]:
        parent = Construct(parent, part)
    StorageConstruct(parent, path[-1], config=StackConfig())
    return dict(Template.from_stack(stack).to_json())


@pytest.fixture(scope="module")
def before() -> dict[str, Any]:
    """The storage as the stack builds it today."""
    return _storage_template("Storage")


def _check(tmp_path: Path, old: dict[str, Any], new: dict[str, Any], *args: str) -> int:
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    return cdk_check.main(["--templates", str(tmp_path / "old.json"), str(tmp_path / "new.json"), *args])


def test_an_unchanged_template_passes(
    tmp_path: Path, before: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _check(tmp_path, before, copy.deepcopy(before)) == 0
    assert "no resource would be replaced or deleted" in capsys.readouterr().out


def test_renaming_and_moving_the_storage_construct_replaces_nothing(
    tmp_path: Path, before: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the storage construct renamed and moved under another parent (the logical ids are pinned)
    after = _storage_template("Data", "Store")
    # Then the check passes: the table and the buckets keep their logical ids
    assert _check(tmp_path, before, after) == 0, capsys.readouterr().out


def test_renaming_the_jobs_table_construct_without_its_pin_is_refused_naming_the_table(
    tmp_path: Path, before: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the same rename, as it would be without the pinned logical ids
    monkeypatch.setattr(infra.storage, "pin_logical_id", lambda construct, logical_id: None)
    after = _storage_template("Data", "Store")
    # When the check compares the two templates
    code = _check(tmp_path, before, after)
    out = capsys.readouterr().out
    # Then it fails, naming the jobs table (and the buckets) as deleted stateful resources
    assert code == 1
    assert "DELETED  STATEFUL  StorageJobs4C7573CB (AWS::DynamoDB::GlobalTable)" in out
    assert "StorageBucket5CB7C8EA" in out and "refused: 3 stateful resource(s)" in out


def test_a_changed_key_schema_is_a_replacement_and_allow_accepts_it(
    tmp_path: Path, before: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the jobs table without its sort key (CloudFormation replaces a table whose key schema changes)
    after = copy.deepcopy(before)
    after["Resources"]["StorageJobs4C7573CB"]["Properties"]["KeySchema"].pop()
    assert _check(tmp_path, before, after) == 1
    assert "REPLACED STATEFUL  StorageJobs4C7573CB (AWS::DynamoDB::GlobalTable): KeySchema changed" in (
        capsys.readouterr().out
    )
    # And an operator who means it (a migration) accepts that one resource by its logical id
    assert _check(tmp_path, before, after, "--allow", "StorageJobs4C7573CB") == 0


def test_stateless_replacements_are_listed_but_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = {"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "a"}}}}
    new = {"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "b"}}}}
    assert _check(tmp_path, old, new) == 0
    assert "REPLACED stateless Fn (AWS::Lambda::Function): FunctionName changed" in capsys.readouterr().out


def test_a_missing_base_ref_is_an_error_unless_optional() -> None:
    missing = "refs/heads/no-such-branch-for-cdk-check"
    assert not cdk_check.ref_exists(missing)
    assert cdk_check.main([missing]) == 2
    assert cdk_check.main([missing, "--base-optional"]) == 0
