"""Per-account usage plan keys of a deployed stack: the API Gateway API key whose value is the account id.

The authorizer names the account id as `usageIdentifierKey` (functions/http/access.py), and API Gateway
meters and throttles the API key with that value in the stack's usage plan (output `UsagePlanId`). An account
without one gets 403 `account_not_enabled`. `bulkapi admin usage-key` (or `create-account --usage-plan`) creates it.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from functions.http.access import Decision


def ensure_usage_key(apigateway: Any, usage_plan_id: str, account_id: str) -> str:
    """The id of the account's API key, created and added to the usage plan where missing (idempotent)."""
    value = Decision(account_id=account_id).usage_identifier_key
    assert value is not None
    listed = apigateway.get_api_keys(nameQuery=account_id, includeValues=False).get("items", [])
    key_id = next((str(k["id"]) for k in listed if k.get("name") == account_id), None)
    if key_id is None:
        created = apigateway.create_api_key(
            name=account_id, value=value, enabled=True, description="bulkapi: the account's usage plan key"
        )
        key_id = str(created["id"])
    try:
        apigateway.create_usage_plan_key(usagePlanId=usage_plan_id, keyId=key_id, keyType="API_KEY")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConflictException":  # already in the plan
            raise
    return key_id
