"""The local gateway's authorizers: routing as API Gateway does, identity sources, the TTL cache, the policy."""

from __future__ import annotations

from typing import Any

from functions.handlers import authorizer
from functions.http.access import Decision
from local.gateway_authorizers import LocalAuthorizers

ROOT = {"Fn::GetAtt": ["Api", "RootResourceId"]}
TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {}},
        "Key": {
            "Type": "AWS::ApiGateway::Authorizer",
            "Properties": {
                "Type": "REQUEST",
                "AuthorizerUri": {"Fn::Join": ["", ["arn:", {"Fn::GetAtt": ["Fn", "Arn"]}, "/invocations"]]},
                "IdentitySource": "method.request.header.Authorization",
                "AuthorizerResultTtlInSeconds": 30,
            },
        },
        "Api1": {"Type": "AWS::ApiGateway::Resource", "Properties": {"ParentId": ROOT, "PathPart": "api"}},
        "Health": {
            "Type": "AWS::ApiGateway::Resource",
            "Properties": {"ParentId": {"Ref": "Api1"}, "PathPart": "health"},
        },
        "Proxy": {"Type": "AWS::ApiGateway::Resource", "Properties": {"ParentId": ROOT, "PathPart": "{proxy+}"}},
        "AnyProxy": {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                "HttpMethod": "ANY",
                "ResourceId": {"Ref": "Proxy"},
                "AuthorizationType": "CUSTOM",
                "AuthorizerId": {"Ref": "Key"},
            },
        },
        "GetHealth": {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {"HttpMethod": "GET", "ResourceId": {"Ref": "Health"}, "AuthorizationType": "NONE"},
        },
        "Denied": {
            "Type": "AWS::ApiGateway::GatewayResponse",
            "Properties": {
                "ResponseType": "ACCESS_DENIED",
                "StatusCode": "401",
                "ResponseTemplates": {"application/json": '{"error": "unauthorized", "message": "no"}'},
            },
        },
    }
}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Authorizer:
    """The real handler's policy, with a key store the test controls; counts invocations."""

    def __init__(self) -> None:
        self.accounts = {"k1": "acct_1"}
        self.calls = 0

    def __call__(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        assert function == "Fn" and event["type"] == "REQUEST"
        self.calls += 1
        return authorizer.handle(event, self)

    def account_for_key(self, api_key: str) -> str | None:
        return self.accounts.get(api_key)


def _authorizers() -> tuple[LocalAuthorizers, Clock]:
    clock = Clock()
    local = LocalAuthorizers.from_template(TEMPLATE, {"Fn": "Fn"})
    local.clock = clock
    return local, clock


def test_routes_go_to_the_most_specific_resource_with_a_method() -> None:
    local, _ = _authorizers()
    health = local.route("GET", "/api/health")
    assert health is not None and health.authorizer is None
    proxied = local.route("POST", "/api/health")  # no POST on /api/health: the greedy proxy takes it
    assert proxied is not None and proxied.path == "/{proxy+}" and proxied.authorizer is not None


def test_an_allowed_key_passes_its_context_and_the_answer_is_cached_for_the_ttl() -> None:
    local, clock = _authorizers()
    fn = Authorizer()
    headers = {"Authorization": "Bearer k1"}
    first = local.authorize("GET", "/api/bulk-jobs", headers, "127.0.0.1", fn)
    assert first.answer is None and first.context == {"account_id": "acct_1", "principalId": "acct_1"}
    # Revoked, but within the TTL the cached Allow answers (for any route of the stage)
    del fn.accounts["k1"]
    clock.now = 29.9
    assert local.authorize("POST", "/api/credits", headers, "127.0.0.1", fn).answer is None
    assert fn.calls == 1
    # Past the TTL the authorizer runs again and denies, with the template's answer
    clock.now = 30.0
    denied = local.authorize("GET", "/api/bulk-jobs", headers, "127.0.0.1", fn)
    assert denied.answer == (401, {"Content-Type": "application/json"}, b'{"error": "unauthorized", "message": "no"}')
    assert fn.calls == 2


def test_no_identity_source_is_401_without_an_invocation_and_a_failure_is_500() -> None:
    local, _ = _authorizers()
    fn = Authorizer()
    missing = local.authorize("GET", "/api/bulk-jobs", {}, "127.0.0.1", fn)
    assert missing.answer is not None and missing.answer[0] == 401 and fn.calls == 0

    def broken(function: str, event: dict[str, Any]) -> Any:
        raise RuntimeError("table unreachable")

    failed = local.authorize("GET", "/api/bulk-jobs", {"Authorization": "Bearer k1"}, "127.0.0.1", broken)
    assert failed.answer is not None and failed.answer[0] == 500


def test_a_zero_ttl_asks_every_time() -> None:
    local, _ = _authorizers()
    local.override_ttl(0)
    fn = Authorizer()
    for _ in range(3):
        assert local.authorize("GET", "/x", {"Authorization": "Bearer k1"}, "127.0.0.1", fn).answer is None
    assert fn.calls == 3


def test_a_policy_for_another_stage_does_not_allow() -> None:
    local, _ = _authorizers()

    def other_stage(function: str, event: dict[str, Any]) -> dict[str, Any]:
        arn = event["methodArn"].replace("/local/", "/prod/")
        return authorizer.policy(arn, Decision(account_id="acct_1"))

    answer = local.authorize("GET", "/x", {"Authorization": "Bearer k1"}, "127.0.0.1", other_stage).answer
    assert answer is not None and answer[0] == 401
