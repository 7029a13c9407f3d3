"""CDK feature flags: every flag at the value the pinned aws-cdk-lib recommends, and the ones that matter here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import infra.auth
from infra.config import cdk_json_context
from tests.infra.conftest import Synth, synthesize


def _flag_report(synth: Synth) -> dict[str, dict[str, Any]]:
    """The feature-flag report aws-cdk-lib writes into the cloud assembly (what `cdk flags` reads)."""
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    (report,) = [a for a in manifest["artifacts"].values() if a["type"] == "cdk:feature-flag-report"]
    return dict(report["properties"]["flags"])


def test_every_feature_flag_has_the_value_aws_cdk_lib_recommends(synth: Synth) -> None:
    # Given the report of the flags the pinned aws-cdk-lib knows, with the value each has in this synthesis
    flags = _flag_report(synth)
    assert len(flags) > 80
    # Then each behaves as recommended: set in cdk.json, or a flag whose unset behaviour in v2 is the recommended one
    off = {
        name: flag
        for name, flag in flags.items()
        if "recommendedValue" in flag
        and flag.get("userValue", flag.get("unconfiguredBehavesLike", {}).get("v2", False)) != flag["recommendedValue"]
    }
    assert off == {}
    # And cdk.json sets only flags that exist (a misspelt flag would be ignored silently)
    set_in_json = {k for k in cdk_json_context() if k.startswith("@aws-cdk")}
    assert set_in_json <= set(flags)


def _deployments(synth: Synth) -> set[str]:
    return set(synth.resources("AWS::ApiGateway::Deployment"))


@pytest.fixture(scope="module")
def longer_cache(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The stack with the authorizer's cache TTL (the key-revocation window) changed from 30 s to 60 s."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(infra.auth, "CACHE_SECONDS", 60)
        return synthesize(Path(tmp_path_factory.mktemp("cdk.out.cache60")))


@pytest.mark.slow
def test_a_changed_authorizer_cache_ttl_deploys_the_api_anew(synth: Synth, longer_cache: Synth) -> None:
    # Given two synths that differ only in the authorizer's cache TTL
    ttl = {
        s.template["Resources"][s.logical_id(s.stack.authorizer.key_authorizer)]["Properties"][
            "AuthorizerResultTtlInSeconds"
        ]
        for s in (synth, longer_cache)
    }
    assert ttl == {30, 60}
    # Then the API deployment has a new logical id (@aws-cdk/aws-apigateway:authorizerChangeDeploymentLogicalId), so
    # CloudFormation creates a deployment and the stage serves the new setting; before, the stage kept the old one
    assert _deployments(synth) and _deployments(longer_cache)
    assert _deployments(synth).isdisjoint(_deployments(longer_cache))
    (stage,) = longer_cache.resources("AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["DeploymentId"] == {"Ref": next(iter(_deployments(longer_cache)))}
