"""The Lambda Web Adapter layer: resolved per region from the table in infra/web_adapter.py, or overridden."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra.stack import build_app, the_stack
from infra.web_adapter import (
    CHINA_X86_64_ONLY,
    LAYER_ARNS,
    OVERRIDE_KEY,
    WEB_ADAPTER_LAYER,
    UnknownRegionError,
    layer_arn,
)
from tests.infra.conftest import SYNTH_CONTEXT, Synth

ARM64_LAYER = re.compile(r"^arn:(aws|aws-cn):lambda:(?P<region>[a-z0-9-]+):\d{12}:layer:LambdaAdapterLayerArm64:\d+$")


def _stream_layers(template: dict[str, Any], synth_stack: Any) -> list[Any]:
    lid = synth_stack.get_logical_id(synth_stack.streaming.function.node.default_child)
    return list(template["Resources"][lid]["Properties"]["Layers"])


def _synth_template(tmp_path: Path, context: dict[str, Any] | None = None, region: str | None = None) -> Any:
    app = build_app({**SYNTH_CONTEXT, **(context or {})}, outdir=str(tmp_path), region=region)
    stack = the_stack(app)
    app.synth()
    return stack, json.loads((tmp_path / f"{stack.artifact_id}.template.json").read_text())


@pytest.mark.parametrize("region", sorted(LAYER_ARNS))
def test_every_region_of_the_table_resolves_to_the_arm64_layer_of_that_region(region: str, synth: Synth) -> None:
    # Given the region-agnostic template: the layer is Fn::FindInMap on the region
    (layer,) = [x for x in _stream_layers(synth.template, synth.stack) if "Fn::FindInMap" in x]
    mapping_name, region_ref, key = layer["Fn::FindInMap"]
    assert region_ref == {"Ref": "AWS::Region"}
    # When CloudFormation resolves it in the region
    resolved = synth.template["Mappings"][mapping_name][region][key]
    # Then it is the arm64 adapter published in that very region, and what a region-bound synth picks
    match = ARM64_LAYER.match(resolved)
    assert match is not None and match.group("region") == region, resolved
    assert resolved == layer_arn(region)
    # And the deploy-time rule lets that region through
    (rule,) = synth.template["Rules"]["WebAdapterLayerKnownInRegion"]["Assertions"]
    allowed, checked = rule["Assert"]["Fn::Contains"]
    assert region in allowed and checked == {"Ref": "AWS::Region"}


def test_the_rule_allows_exactly_the_regions_of_the_mapping(synth: Synth) -> None:
    (rule,) = synth.template["Rules"]["WebAdapterLayerKnownInRegion"]["Assertions"]
    assert sorted(rule["Assert"]["Fn::Contains"][0]) == sorted(synth.template["Mappings"]["WebAdapterLayerByRegion"])
    assert OVERRIDE_KEY in rule["AssertDescription"]


def test_a_region_bound_stack_gets_the_table_arn_at_synth(tmp_path: Path) -> None:
    stack, template = _synth_template(tmp_path, region="eu-west-1")
    assert _stream_layers(template, stack)[1] == LAYER_ARNS["eu-west-1"]
    assert "WebAdapterLayerByRegion" not in template.get("Mappings", {})


def test_the_override_wins_over_the_table(tmp_path: Path) -> None:
    arn = f"arn:aws:lambda:eu-west-1:123456789012:layer:{WEB_ADAPTER_LAYER}:7"
    stack, template = _synth_template(tmp_path, {OVERRIDE_KEY: arn})
    assert _stream_layers(template, stack)[1] == arn
    assert "WebAdapterLayerByRegion" not in template.get("Mappings", {})


@pytest.mark.parametrize("region", ["xx-nowhere-1", *sorted(CHINA_X86_64_ONLY)])
def test_an_unknown_region_fails_the_synth_naming_the_override(region: str) -> None:
    with pytest.raises(UnknownRegionError, match=OVERRIDE_KEY) as failure:
        build_app(SYNTH_CONTEXT, region=region)
    if region in CHINA_X86_64_ONLY:
        assert "x86_64" in str(failure.value)


def test_an_unknown_region_with_the_override_synthesizes() -> None:
    arn = f"arn:aws-cn:lambda:cn-north-1:123456789012:layer:{WEB_ADAPTER_LAYER}:3"
    app = build_app({**SYNTH_CONTEXT, OVERRIDE_KEY: arn}, region="cn-north-1")
    assert layer_arn("cn-north-1", arn) == arn
    assert the_stack(app).region == "cn-north-1"


def test_an_override_that_is_not_a_layer_version_arn_is_refused() -> None:
    with pytest.raises(ValueError, match=OVERRIDE_KEY):
        layer_arn("eu-west-1", "arn:aws:lambda:eu-west-1:123456789012:layer:LambdaAdapterLayerArm64")
