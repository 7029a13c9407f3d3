"""The authorizer in front of every route, per-account usage plan limits, concurrency caps, gateway answers, WAF."""

from __future__ import annotations

import json
from typing import Any

from functions.http.access import CACHE_SECONDS, PUBLIC_ROUTES
from infra.waf import IP_REPUTATION, KNOWN_BAD_INPUTS
from local.gateway_authorizers import resource_paths
from tests.infra.conftest import Synth


def _resource_paths(synth: Synth) -> dict[str, str]:
    """Logical id of each API resource (and the root's GetAtt) -> its full path (read as the local gateway reads it)."""
    return resource_paths(synth.resources("AWS::ApiGateway::Resource"))


def _methods(synth: Synth) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, HTTP method, properties) of every API method."""
    paths = _resource_paths(synth)
    found = []
    for method in synth.resources("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        ref = props["ResourceId"]
        found.append(("/" if "Fn::GetAtt" in ref else paths[ref["Ref"]], props["HttpMethod"], props))
    return found


def test_every_non_public_route_has_the_key_authorizer_and_needs_an_api_key(synth: Synth) -> None:
    key = {"Ref": synth.logical_id(synth.stack.authorizer.key_authorizer)}
    methods = [(p, m, props) for p, m, props in _methods(synth) if m != "OPTIONS"]
    assert len(methods) > len(PUBLIC_ROUTES)
    for path, http_method, props in methods:
        if path in PUBLIC_ROUTES and http_method == "GET":
            # The public routes invoke no Lambda at all: no authorizer, no key
            assert props["AuthorizationType"] == "NONE", (path, http_method)
            assert "AuthorizerId" not in props and props["ApiKeyRequired"] is False, (path, http_method)
        else:
            assert props["AuthorizationType"] == "CUSTOM", (path, http_method)
            assert (props["AuthorizerId"], props["ApiKeyRequired"]) == (key, True), (path, http_method)
    # And each public route exists, as GET
    assert {p for p, m, _ in methods if p in PUBLIC_ROUTES and m == "GET"} == set(PUBLIC_ROUTES)


def test_the_key_authorizer_is_cached_per_authorization_header_for_the_documented_ttl(synth: Synth) -> None:
    authorizers = synth.resources("AWS::ApiGateway::Authorizer")
    # One authorizer: the key authorizer (the always-allow public one is gone)
    (props,) = [a["Properties"] for a in authorizers.values()]
    assert list(authorizers) == [synth.logical_id(synth.stack.authorizer.key_authorizer)]
    assert props["Type"] == "REQUEST"
    assert synth.logical_id(synth.stack.authorizer.function) in json.dumps(props["AuthorizerUri"])
    assert props["IdentitySource"] == "method.request.header.Authorization"
    assert props["AuthorizerResultTtlInSeconds"] == CACHE_SECONDS == 30


def test_the_authorizer_function_may_only_read_items_of_the_jobs_table(synth: Synth) -> None:
    fn = synth.template["Resources"][synth.logical_id(synth.stack.authorizer.function)]["Properties"]
    role_id = fn["Role"]["Fn::GetAtt"][0]
    statements = [
        s
        for p in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    dynamo = [s for s in statements if "dynamodb" in json.dumps(s["Action"])]
    assert [s["Action"] for s in dynamo] == ["dynamodb:GetItem"]
    assert json.dumps(dynamo[0]["Resource"]) == json.dumps(
        {"Fn::GetAtt": [synth.logical_id(synth.stack.storage.table), "Arn"]}
    )


def test_each_account_is_throttled_by_the_usage_plan_of_the_key_the_authorizer_names(synth: Synth) -> None:
    api = synth.template["Resources"][synth.logical_id(synth.stack.api.rest_api)]["Properties"]
    assert api["ApiKeySourceType"] == "AUTHORIZER"
    (plan,) = synth.resources("AWS::ApiGateway::UsagePlan").values()
    props = plan["Properties"]
    assert props["Throttle"] == {
        "RateLimit": synth.config.account_rate_limit,
        "BurstLimit": synth.config.account_burst_limit,
    }
    (stage,) = props["ApiStages"]
    assert stage["ApiId"] == {"Ref": synth.logical_id(synth.stack.api.rest_api)}
    assert synth.stack.stack_name in props["UsagePlanName"] or synth.config.stage in props["UsagePlanName"]


def test_gateway_answers_use_the_project_error_shape(synth: Synth) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in synth.resources("AWS::ApiGateway::GatewayResponse").values()
    }
    assert {"UNAUTHORIZED", "ACCESS_DENIED", "THROTTLED", "INVALID_API_KEY", "AUTHORIZER_FAILURE"} <= set(responses)
    # A denied key is a 401, as the api function answered before the authorizer existed
    assert responses["ACCESS_DENIED"]["StatusCode"] == responses["UNAUTHORIZED"]["StatusCode"] == "401"
    for response_type, props in responses.items():
        body = json.loads(props["ResponseTemplates"]["application/json"])
        # `code` repeats `error`: the official Go client reads `code`, the Python one `error`
        assert set(body) == {"error", "code", "message"} and body["message"], response_type
        assert body["code"] == body["error"], response_type


def test_api_and_stream_functions_have_reserved_concurrency_from_context(synth: Synth) -> None:
    resources = synth.template["Resources"]
    api = resources[synth.logical_id(synth.stack.api.function)]["Properties"]
    stream = resources[synth.logical_id(synth.stack.streaming.function)]["Properties"]
    assert api["ReservedConcurrentExecutions"] == synth.config.api_reserved_concurrency
    assert stream["ReservedConcurrentExecutions"] == synth.config.stream_reserved_concurrency


def test_apig4_is_acknowledged_only_on_the_public_routes_and_cog4_only_where_an_authorizer_decides(
    synth: Synth,
) -> None:
    from tests.infra.test_security import _acknowledgements

    public_methods = {m.node.default_child.node.path for m in synth.stack.api.public_methods}  # type: ignore[union-attr]
    for construct, rules in _acknowledgements(synth.stack.node.root):
        names = {r.removeprefix("Annotation::") for r in rules}
        if "AwsSolutions-APIG4" in names:
            assert construct.node.path in public_methods, construct.node.path
        if "AwsSolutions-COG4" in names and construct.node.path not in public_methods:
            method = synth.template["Resources"][synth.stack.get_logical_id(construct)]  # type: ignore[arg-type]
            assert method["Type"] == "AWS::ApiGateway::Method", construct.node.path
            assert method["Properties"]["AuthorizationType"] == "CUSTOM", construct.node.path


def test_production_stages_get_waf_with_managed_rules_and_a_rate_rule(synth: Synth) -> None:
    # Given the default stage, prod: a production stage, with no bulkapi:waf set
    assert synth.config.is_production and synth.config.waf is None
    (acl,) = synth.resources("AWS::WAFv2::WebACL").values()
    rules = {r["Name"]: r for r in acl["Properties"]["Rules"]}
    # Then AWS's common rules, known bad inputs and the IP reputation list apply, and a per-IP rate rule blocks
    for name in ("AWSManagedRulesCommonRuleSet", KNOWN_BAD_INPUTS, IP_REPUTATION):
        group = rules[name]["Statement"]["ManagedRuleGroupStatement"]
        assert group["VendorName"] == "AWS" and group["Name"] == name
        assert rules[name]["OverrideAction"] == {"None": {}}, name
    common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    # The 8 KB body rule would block every upload: it only counts
    assert {o["Name"]: o["ActionToUse"] for o in common["RuleActionOverrides"]} == {
        "SizeRestrictions_BODY": {"Count": {}}
    }
    rate = rules["RatePerIp"]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"]["Limit"] == synth.config.waf_rate_limit
    assert len({r["Priority"] for r in rules.values()}) == len(rules)
    (association,) = synth.resources("AWS::WAFv2::WebACLAssociation").values()
    assert association["Properties"]["WebACLArn"] == {
        "Fn::GetAtt": [next(iter(synth.resources("AWS::WAFv2::WebACL"))), "Arn"]
    }
    assert "stages" in json.dumps(association["Properties"]["ResourceArn"])


def test_other_stages_have_no_web_acl_by_default_and_without_reservations_no_reserved_concurrency(
    dev_synth: Synth,
) -> None:
    assert dev_synth.validation_error is None, dev_synth.validation_error
    assert not dev_synth.config.is_production
    assert dev_synth.resources("AWS::WAFv2::WebACL") == {}
    for fn in (dev_synth.stack.api.function, dev_synth.stack.streaming.function):
        assert (
            "ReservedConcurrentExecutions"
            not in dev_synth.template["Resources"][dev_synth.logical_id(fn)]["Properties"]
        )
