"""Who may call the API, and how much: the Lambda REQUEST authorizer, per-account usage plan limits, gateway answers.

- Every method needs a key except the public routes (health, docs, the OpenAPI document, the console). The key
  authorizer (`functions/handlers/authorizer.py`) hashes the `Authorization: Bearer <key>` value, looks it up in
  the jobs table and answers with `context.account_id` and `usageIdentifierKey`. API Gateway caches its answer per
  Authorization header for `CACHE_SECONDS` (30 s): a revoked key stops working within that. A request without the
  header is refused by API Gateway before any invocation.
- The public routes (`functions/http/access.py` PUBLIC_ROUTES) have no authorizer: API Gateway sends them
  to the api function without invoking anything (infra/api.py acknowledges cdk-nag's APIG4 on each of them).
- Per-account limits: the API's key source is AUTHORIZER, every keyed method requires an API key, and the usage plan
  throttles each API key separately. The authorizer's `usageIdentifierKey` is the account id, so each account needs an
  API Gateway API key whose value is its account id, in the plan (`bulkapi admin usage-key`, README).
- Gateway answers (401, 403, 429, authorizer failures) carry the project's error body, `{"error", "code", "message"}`.
"""

from __future__ import annotations

import json

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from constructs import Construct

from functions.errors import error_body
from functions.http.access import CACHE_SECONDS
from infra.config import StackConfig
from infra.functions import FunctionFactory
from infra.storage import StorageConstruct

# What API Gateway answers itself, in the project's error shape (the `message` key is what clients print).
# Keyed by API Gateway response type name (jsii ResponseType objects do not hash by value).
GATEWAY_ANSWERS: dict[str, tuple[str, str, str]] = {
    # No Authorization header: refused before the authorizer runs.
    "UNAUTHORIZED": ("401", "unauthorized", "send your API key as `Authorization: Bearer <key>`"),
    # The authorizer's Deny: an unknown or revoked key.
    "ACCESS_DENIED": ("401", "unauthorized", "the API key is not valid (unknown or revoked)"),
    "AUTHORIZER_FAILURE": ("500", "internal_error", "the API key could not be checked; try again"),
    "AUTHORIZER_CONFIGURATION_ERROR": (
        "500",
        "internal_error",
        "the API key could not be checked; try again",
    ),
    # The account has no API key in the usage plan yet (README "Per-account limits").
    "INVALID_API_KEY": (
        "403",
        "account_not_enabled",
        "this account has no usage plan key yet: ask the operator to run `bulkapi admin usage-key`",
    ),
    "THROTTLED": ("429", "rate_limited", "too many requests: slow down and retry"),
    "QUOTA_EXCEEDED": ("429", "quota_exceeded", "the account's request quota is used up"),
    # A body over API Gateway's 10 MB payload limit, refused before any function runs (`bulkapi serve` answers the
    # same, local/gateway.py).
    "REQUEST_TOO_LARGE": ("413", "request_too_large", "the request body is larger than the API takes"),
}


class AuthorizerConstruct(Construct):
    """The authorizer function and its API Gateway authorizer; `protected` is the keyed methods' options."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: FunctionFactory,
        storage: StorageConstruct,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = functions.make(
            self,
            "Function",
            handler="authorizer",
            env=storage.environment(bucket=False),
            # One GetItem; API Gateway waits at most 10 s for an authorizer.
            timeout=Duration.seconds(10),
            memory=1024,
        )
        # account_for_key: one GetItem on KEY#<sha256>.
        storage.grant_jobs(self.function, "GetItem")
        self.key_authorizer = apigw.RequestAuthorizer(
            self,
            "KeyAuthorizer",
            handler=self.function,
            identity_sources=[apigw.IdentitySource.header("Authorization")],
            results_cache_ttl=Duration.seconds(CACHE_SECONDS),
        )
        self.protected = apigw.MethodOptions(
            authorizer=self.key_authorizer,
            authorization_type=apigw.AuthorizationType.CUSTOM,
            api_key_required=True,
        )

    def limit(self, rest_api: apigw.RestApi, config: StackConfig) -> apigw.UsagePlan:
        """The per-account usage plan on the API's stage, and the gateway's own answers in the project's shape."""
        plan = rest_api.add_usage_plan(
            "AccountPlan",
            name=f"bulkapi-{config.stage}-accounts",
            description="Per-account limits: each account's API key (value = account id) is throttled on its own",
            throttle=apigw.ThrottleSettings(
                rate_limit=config.account_rate_limit, burst_limit=config.account_burst_limit
            ),
            api_stages=[apigw.UsagePlanPerApiStage(api=rest_api, stage=rest_api.deployment_stage)],
        )
        for response_type, (status, code, message) in GATEWAY_ANSWERS.items():
            rest_api.add_gateway_response(
                f"Answer{response_type}",
                type=apigw.ResponseType.of(response_type),
                status_code=status,
                templates={"application/json": json.dumps(error_body(code, message))},
            )
        return plan
