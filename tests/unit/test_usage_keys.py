"""Usage plan keys of a deployed stack, against moto's in-process API Gateway."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.usage_keys import ensure_usage_key


@pytest.fixture
def apigateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An API Gateway with no keys, dummy credentials."""
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("apigateway", region_name="eu-west-1")


def test_the_account_gets_one_api_key_valued_its_id_in_the_plan_however_often_asked(apigateway: Any) -> None:
    plan = apigateway.create_usage_plan(name="bulkapi-dev-accounts")["id"]
    # When the key is ensured twice
    first = ensure_usage_key(apigateway, plan, "acct_0123456789abcdef")
    second = ensure_usage_key(apigateway, plan, "acct_0123456789abcdef")
    # Then there is one key, with the account id as value (what the authorizer names), in the plan once
    assert first == second
    (key,) = apigateway.get_api_keys(includeValues=True)["items"]
    assert key["value"] == "acct_0123456789abcdef" and key["enabled"]
    assert [k["id"] for k in apigateway.get_usage_plan_keys(usagePlanId=plan)["items"]] == [first]
