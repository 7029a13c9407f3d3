"""The API's authorizer: the decision (logic), the policy it answers (handler), and how the functions read it back."""

from __future__ import annotations

import json

from functions.handlers import authorizer
from functions.http import access
from functions.http.access import PUBLIC_ROUTES, Decision, bearer_key, decide

METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/POST/api/bulk-jobs"


class Keys:
    """A key store: key -> account; records what was looked up."""

    def __init__(self, accounts: dict[str, str]) -> None:
        self.accounts, self.asked = accounts, []

    def account_for_key(self, api_key: str) -> str | None:
        self.asked.append(api_key)
        return self.accounts.get(api_key)


def _event(path: str, headers: dict[str, str]) -> dict[str, object]:
    return {"type": "REQUEST", "methodArn": METHOD_ARN, "path": path, "headers": headers, "httpMethod": "POST"}


def test_bearer_key_reads_the_authorization_header_in_any_case() -> None:
    assert bearer_key({"Authorization": "Bearer enc_live_x"}) == "enc_live_x"
    assert bearer_key({"authorization": "bearer  enc_live_x "}) == "enc_live_x"
    assert bearer_key({"Authorization": "Basic abc"}) is None
    assert bearer_key({"Authorization": "Bearer "}) is None
    assert bearer_key(None) is None


def test_a_known_key_is_its_account_and_names_the_accounts_usage_key() -> None:
    decision = decide("/api/bulk-jobs", {"Authorization": "Bearer k1"}, Keys({"k1": "acct_1"}))
    assert decision == Decision(account_id="acct_1") and decision.allowed
    assert decision.usage_identifier_key == "acct_1"


def test_an_unknown_or_missing_key_is_nobody_and_a_public_route_needs_none() -> None:
    keys = Keys({"k1": "acct_1"})
    assert not decide("/api/bulk-jobs", {"Authorization": "Bearer nope"}, keys).allowed
    assert not decide("/api/bulk-jobs", {}, keys).allowed
    for path in PUBLIC_ROUTES:
        public = decide(path, {}, keys)
        assert public.allowed and public.public and public.account_id is None
    assert keys.asked == ["nope"]  # no lookup without a key, none for public routes


def test_the_handler_allows_every_route_of_the_stage_with_the_account_in_its_context() -> None:
    answer = authorizer.handle(_event("/api/bulk-jobs", {"Authorization": "Bearer k1"}), Keys({"k1": "acct_1"}))
    assert answer["principalId"] == "acct_1"
    assert answer["context"] == {"account_id": "acct_1"}
    assert answer["usageIdentifierKey"] == "acct_1"
    (statement,) = answer["policyDocument"]["Statement"]
    # The answer is cached per Authorization header and reused for other routes: it must cover all of them
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == ["arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/*/*"]


def test_the_handler_denies_an_unknown_key_without_context_or_usage_key() -> None:
    answer = authorizer.handle(_event("/api/bulk-jobs", {"Authorization": "Bearer nope"}), Keys({}))
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert "context" not in answer and "usageIdentifierKey" not in answer


def test_the_policy_keeps_the_partition_of_the_method_arn() -> None:
    arn = METHOD_ARN.replace("arn:aws:", "arn:aws-cn:").replace("eu-west-1", "cn-north-1")
    answer = authorizer.policy(arn, Decision(account_id="acct_1"))
    assert answer["policyDocument"]["Statement"][0]["Resource"][0].startswith("arn:aws-cn:execute-api:cn-north-1:")


def test_functions_read_the_account_from_the_proxy_event_or_the_web_adapter_header() -> None:
    event = {"requestContext": {"authorizer": {"account_id": "acct_1", "principalId": "acct_1"}}}
    assert access.account_from_event(event) == "acct_1"
    assert access.account_from_event({"requestContext": {}}) is None
    assert access.account_from_event({}) is None
    header = {access.REQUEST_CONTEXT_HEADER: json.dumps(event["requestContext"])}
    assert access.account_from_headers(header) == "acct_1"
    # A pass-through invocation carries the literal null; garbage is no account either
    assert access.account_from_headers({access.REQUEST_CONTEXT_HEADER: "null"}) is None
    assert access.account_from_headers({access.REQUEST_CONTEXT_HEADER: "{not json"}) is None
    assert access.account_from_headers({}) is None


def test_the_public_routes_are_get_routes_of_the_api() -> None:
    # The one list the authorizer, the api function's key check and the document read names routes the api answers.
    from functions.handlers import api

    assert {("GET", path) for path in PUBLIC_ROUTES} <= {(r.method, r.path) for r in api.app._static_routes}
