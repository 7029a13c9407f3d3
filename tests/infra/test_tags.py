"""Tags `project` and `stage` on every resource that can carry tags."""

from __future__ import annotations

from typing import Any

from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from infra.stack import PROJECT_TAG
from tests.infra.conftest import Synth

# Types whose tags live below the top level, where the provider schema's `tagging` does not point.
NESTED_TAGS = {"AWS::DynamoDB::GlobalTable": ("Replicas", "Tags")}


def _as_dict(tags: Any) -> dict[str, Any]:
    """Tags as a dict, from either CloudFormation shape ([{Key, Value}] or {key: value})."""
    if isinstance(tags, list):
        return {t["Key"]: t["Value"] for t in tags}
    return dict(tags or {})


def _tag_sets(resource_type: str, properties: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The resource's tag sets, or None when the type cannot be tagged."""
    if resource_type in NESTED_TAGS:
        outer, inner = NESTED_TAGS[resource_type]
        return [_as_dict(item.get(inner)) for item in properties[outer]]
    if resource_type.startswith("Custom::") or resource_type.startswith("AWS::CloudFormation::CustomResource"):
        return None
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    tagging = schema.get("tagging") or {}
    if not tagging.get("taggable", "Tags" in schema.get("properties", {})):
        return None
    path = tagging.get("tagProperty", "/properties/Tags").split("/")[-1]
    return [_as_dict(properties.get(path))]


def test_every_taggable_resource_has_project_and_stage(synth: Synth) -> None:
    expected = {"project": PROJECT_TAG, "stage": synth.config.stage}
    checked, missing = 0, []
    for lid, resource in synth.template["Resources"].items():
        tag_sets = _tag_sets(resource["Type"], resource.get("Properties") or {})
        if tag_sets is None:
            continue
        checked += 1
        for tags in tag_sets:
            if {k: tags.get(k) for k in expected} != expected:
                missing.append(f"{lid} ({resource['Type']}): {tags}")
    assert checked > 20, "the template has taggable resources (otherwise this proves nothing)"
    assert missing == []


def test_the_stack_itself_is_tagged(synth: Synth) -> None:
    # Stack tags: CloudFormation propagates them to what it creates, including resources CDK cannot tag.
    assert synth.stack.tags.tag_values() == {"project": PROJECT_TAG, "stage": synth.config.stage}
