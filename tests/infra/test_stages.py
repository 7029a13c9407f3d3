"""Stages: each is its own stack, `BulkApi-<stage>`, and two stages share no physical name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import StackConfig
from infra.stack import build_app, check_alarm_target, stack_name
from tests.infra.conftest import SKIP_BUNDLING, Synth

# Properties named `...Name` that are not account-wide physical names: metric and index names, an inline policy's
# name (scoped to its role), an API stage's name (scoped to its API), and the like.
NOT_PHYSICAL = {"MetricName", "PolicyName", "StageName", "IndexName", "AttributeName", "ManagedPolicyName"}


def physical_names(template: dict[str, Any]) -> dict[str, str]:
    """Literal `*Name` property values of every resource (intrinsics name the stack's own resources), by value."""
    names: dict[str, str] = {}
    for logical_id, resource in template["Resources"].items():
        for key, value in (resource.get("Properties") or {}).items():
            if key.endswith("Name") and key not in NOT_PHYSICAL and isinstance(value, str):
                names[value] = f"{logical_id}.{key}"
    return names


@pytest.fixture
def dev(dev_synth: Synth) -> Synth:
    """A second stage, synthesized next to the default one."""
    return dev_synth


def test_the_stack_is_named_after_its_stage(synth: Synth, dev: Synth) -> None:
    assert synth.stack.stack_name == stack_name(synth.config.stage) == f"BulkApi-{synth.config.stage}"
    assert dev.stack.stack_name == "BulkApi-dev"


def test_two_stages_are_two_stacks_with_no_physical_name_in_common(synth: Synth, dev: Synth) -> None:
    # Given the default stage and `-c bulkapi:stage=dev`
    assert synth.config.stage != dev.config.stage
    # Then they are different stacks
    assert synth.stack.stack_name != dev.stack.stack_name
    # And no resource of one carries a literal name that a resource of the other carries
    prod_names, dev_names = physical_names(synth.template), physical_names(dev.template)
    assert prod_names, "the template has named resources (the test would prove nothing otherwise)"
    shared = {name: (prod_names[name], dev_names[name]) for name in set(prod_names) & set(dev_names)}
    assert shared == {}
    # And each stage's API Gateway stage is its own
    stages = [
        r["Properties"]["StageName"] for s in (synth, dev) for r in s.resources("AWS::ApiGateway::Stage").values()
    ]
    assert sorted(stages) == sorted([synth.config.stage, "dev"])


def test_dev_stage_passes_cdk_nag_too(dev: Synth) -> None:
    assert dev.validation_error is None


def test_stage_names_that_cannot_name_a_stack_are_refused() -> None:
    for bad in ("under_score", "-leading", "x" * 33, ""):
        with pytest.raises(ValueError):
            StackConfig(stage=bad)


def test_termination_protection_is_on_for_every_stage_not_marked_ephemeral(synth: Synth, dev: Synth) -> None:
    # Given the default stage and a stage marked -c bulkapi:ephemeral=true
    assert not synth.config.ephemeral and dev.config.ephemeral
    # Then the cloud assembly the CDK CLI deploys asks CloudFormation to protect only the first from deletion
    for stage, protected in ((synth, True), (dev, False)):
        manifest = json.loads((stage.outdir / "manifest.json").read_text())
        properties = manifest["artifacts"][stage.stack.artifact_id]["properties"]
        assert properties.get("terminationProtection", False) is protected, stage.stack.stack_name


def test_a_production_stage_without_an_alarm_target_does_not_synthesize(tmp_path: Path) -> None:
    # Given the default stage (prod) with neither bulkapi:alarmEmail nor bulkapi:alarmTopicArn
    with pytest.raises(ValueError) as refused:
        build_app({**SKIP_BUNDLING, "bulkapi:alarmEmail": "", "bulkapi:alarmTopicArn": ""}, outdir=str(tmp_path))
    # Then the message says which stage and how to give its alarms a target
    message = str(refused.value)
    assert "'prod' is a production stage" in message
    assert "-c bulkapi:alarmEmail=" in message and "-c bulkapi:alarmTopicArn=" in message
    assert "bulkapi:production=false" in message


def test_either_alarm_target_satisfies_a_production_stage_and_other_stages_need_none() -> None:
    check_alarm_target(StackConfig(stage="prod", alarm_email="ops@example.com"))
    check_alarm_target(StackConfig(stage="prod-eu", alarm_topic_arn="arn:aws:sns:eu-west-1:123456789012:pager"))
    check_alarm_target(StackConfig(stage="dev"))
    check_alarm_target(StackConfig(stage="prod", production=False))
    with pytest.raises(ValueError):
        check_alarm_target(StackConfig(stage="staging", production=True))
    with pytest.raises(ValueError):
        check_alarm_target(StackConfig(stage="prod-eu"))
    with pytest.raises(ValueError):
        StackConfig(production=True, ephemeral=True)
