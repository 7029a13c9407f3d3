"""The API's Lambda REQUEST authorizer. Thin: parse the event, decide (functions/http/access.py), answer with a
policy.

An allowed request gets a policy for every route of the stage (the answer is cached per Authorization header and
reused for other routes), `context.account_id` and `usageIdentifierKey` (the account's usage plan key). A missing,
unknown or revoked key gets a Deny, which API Gateway answers 401 in the project's error shape (infra/api_access.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
    parse_api_gateway_arn,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.composition import Function, Handler
from functions.http.access import Decision, KeyLookup, decide
from functions.observability import logger
from functions.settings import AuthorizerSettings


@dataclass(frozen=True)
class Deps:
    """What the authorizer needs, built once per cold start: the key lookup."""

    keys: KeyLookup

    @classmethod
    def from_settings(cls, settings: AuthorizerSettings) -> Deps:
        """The jobs table's key lookup."""
        from functions.adapters.accounts import AccountStore  # boto3 with the first request, not at import

        return cls(AccountStore(settings.jobs_table))


def policy(method_arn: str, decision: Decision) -> dict[str, Any]:
    """The authorizer's answer: Allow or Deny on every route of the stage, with the account's context."""
    arn = parse_api_gateway_arn(method_arn)
    response = APIGatewayAuthorizerResponse(
        principal_id=decision.account_id or ("public" if decision.public else "anonymous"),
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
        context={"account_id": decision.account_id} if decision.account_id else None,
        usage_identifier_key=decision.usage_identifier_key,
        partition=method_arn.split(":", 2)[1],
    )
    if decision.allowed:
        response.allow_all_routes()
    else:
        response.deny_all_routes()
    return response.asdict()


def handle(event: dict[str, Any], keys: KeyLookup) -> dict[str, Any]:
    """Decide one REQUEST authorizer event with the given key store."""
    request = APIGatewayAuthorizerRequestEvent(event)
    decision = decide(request.path, request.headers, keys)
    logger.info("authorized" if decision.allowed else "denied", account_id=decision.account_id, path=request.path)
    return policy(request.method_arn, decision)


def handler_for(deps: Deps) -> Handler:
    """The authorizer composed with its dependencies."""

    @logger.inject_lambda_context(clear_state=True)
    def authorize(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return handle(event, deps.keys)

    return authorize


lambda_handler = Function(AuthorizerSettings, Deps.from_settings, handler_for)
