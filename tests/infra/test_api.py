"""The REST API: proxy routes, stage throttling and logs, CORS only when configured, outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from functions.http.access import PUBLIC_ROUTES
from infra.api import STREAMING_ROUTES
from tests.infra.conftest import Synth, synthesize


def test_every_other_route_is_proxied_to_the_api_function(synth: Synth, template: Template) -> None:
    api_fn = synth.logical_id(synth.stack.api.function)
    template.has_resource_properties("AWS::ApiGateway::Resource", {"PathPart": "{proxy+}"})
    methods = template.find_resources("AWS::ApiGateway::Method")
    # ANY on / and on /{proxy+}, buffered; the others are the streamed POSTs (tests/infra/test_streaming.py) and the
    # public GETs (tests/infra/test_api_access.py)
    anys = [m["Properties"] for m in methods.values() if m["Properties"]["HttpMethod"] == "ANY"]
    assert len(anys) == 2
    assert {m["Properties"]["HttpMethod"] for m in methods.values()} == {"ANY", "POST", "GET"}
    key_authorizer = {"Ref": synth.logical_id(synth.stack.authorizer.key_authorizer)}
    for props in anys:
        assert props["AuthorizationType"] == "CUSTOM" and props["AuthorizerId"] == key_authorizer
        assert props["ApiKeyRequired"] is True
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert "ResponseTransferMode" not in props["Integration"]
        assert api_fn in str(props["Integration"]["Uri"])


def test_stage_is_throttled_logged_and_traced(synth: Synth, template: Template) -> None:
    config = synth.config
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": config.stage,
            # X-Ray as bulkapi:tracing says (off in cdk.json), like the functions and the state machine
            "TracingEnabled": config.tracing,
            "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.string_like_regexp("requestId")},
            "MethodSettings": [
                Match.object_like(
                    {
                        "HttpMethod": "*",
                        "ResourcePath": "/*",
                        "LoggingLevel": "ERROR",
                        "DataTraceEnabled": False,
                        "ThrottlingRateLimit": config.api_rate_limit,
                        "ThrottlingBurstLimit": config.api_burst_limit,
                    }
                )
            ],
        },
    )
    template.has_resource_properties(
        "AWS::ApiGateway::RestApi", {"BinaryMediaTypes": Match.array_with(["multipart/form-data"])}
    )


def test_access_log_lines_carry_the_account_the_latencies_and_the_error(synth: Synth) -> None:
    (stage,) = synth.resources("AWS::ApiGateway::Stage").values()
    fields = json.loads(stage["Properties"]["AccessLogSetting"]["Format"])
    # Who: the account the authorizer named (principalId) and the client; how long; and why it failed
    assert fields["account"] == "$context.authorizer.principalId"
    assert fields["ip"] == "$context.identity.sourceIp"
    assert {"$context.responseLatency", "$context.integration.latency", "$context.authorizer.latency"} <= set(
        fields.values()
    )
    assert fields["error"] == "$context.error.message"
    assert fields["integrationError"] == "$context.integration.error"
    # And no request or response content
    assert not any("body" in value.lower() or "header" in value.lower() for value in fields.values())


def test_outputs_name_what_operators_need(template: Template) -> None:
    outputs = template.find_outputs("*")
    assert {"ApiUrl", "UploadBucket", "DropPrefix", "EventBusName", "WorkDlqArn", "WorkQueueArn"} <= set(outputs)
    assert outputs["DropPrefix"]["Value"] == "drop/"


@pytest.fixture(scope="module")
def cors_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The stack with CORS configured (a second synthesis, the only one besides the session's)."""
    out: Path = tmp_path_factory.mktemp("cdk.out.cors")
    return synthesize(out, {"bulkapi:corsOrigins": "https://app.example.com, https://admin.example.com"})


def test_cors_preflight_only_when_origins_are_configured(synth: Synth, cors_synth: Synth) -> None:
    def options(s: Synth) -> list[dict[str, Any]]:
        return [
            m["Properties"]
            for m in s.resources("AWS::ApiGateway::Method").values()
            if m["Properties"]["HttpMethod"] == "OPTIONS"
        ]

    assert options(synth) == []
    preflights = options(cors_synth)
    # On / and /{proxy+}, and on each explicit resource of the streamed and public routes (/api, /api/agent, the
    # six streamed paths, the public ones but `/`, which is the root already counted)
    assert len(preflights) == 2 + 2 + len(STREAMING_ROUTES) + len([r for r in PUBLIC_ROUTES if r != "/"])
    # Preflights carry no credentials: no authorizer, no API key
    assert all(p["AuthorizationType"] == "NONE" and p["ApiKeyRequired"] is False for p in preflights)
    for preflight in preflights:
        headers = preflight["Integration"]["IntegrationResponses"][0]["ResponseParameters"]
        assert "https://app.example.com" in headers["method.response.header.Access-Control-Allow-Origin"]
    # And the preflight methods' acknowledgements keep cdk-nag clean
    assert cors_synth.validation_error is None, cors_synth.validation_error


def test_the_stack_does_not_own_the_account_wide_api_gateway_setting(synth: Synth) -> None:
    # AWS::ApiGateway::Account is one per account and region: a stack owning it overwrites it on deploy and leaves
    # it pointing at a deleted role on destroy. The role is set once outside the stack (README).
    assert synth.resources("AWS::ApiGateway::Account") == {}
    assert not [
        lid
        for lid, role in synth.resources("AWS::IAM::Role").items()
        if "apigateway.amazonaws.com" in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    ]
