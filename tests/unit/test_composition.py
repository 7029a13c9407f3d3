"""Each function's composition root: Deps built once per cold start from its own settings; tests pass fakes."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from functions.composition import Function
from functions.handlers import api, authorizer
from functions.handlers.routes.deps import Deps
from functions.http.access import KeyCheck
from functions.settings import FUNCTION_SETTINGS, ApiSettings
from local.lambdas import LambdaContext

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

API_SETTINGS = ApiSettings(
    jobs_table="jobs",
    bucket="bucket",
    finalizer_arn="arn:aws:states:us-east-1:000000000000:stateMachine:f",
    variant_queue_url="https://sqs.us-east-1.amazonaws.com/000000000000/variants",
    fetch_queue_url="https://sqs.us-east-1.amazonaws.com/000000000000/fetch",
)


class Accounts:
    """Keys, balances and ledgers in memory (the parts of the account and credit stores the routes below read)."""

    def __init__(self) -> None:
        self.keys = {"enc_one": "acct_one", "enc_two": "acct_two"}
        self.balances = {"acct_one": 70, "acct_two": 5}
        self.lookups = 0

    def account_for_key(self, key: str) -> str | None:
        self.lookups += 1
        return self.keys.get(key)

    def account_credits(self, account_id: str) -> int | None:
        return self.balances.get(account_id)

    def ledger_page(
        self, account_id: str, limit: int = 50, after: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        grant = {"job_id": None, "request_id": None, "kind": "grant", "at": "2026-11-29T00:00:00Z"}
        return [{**grant, "amount": self.balances[account_id]}], None


def fake_api(store: Accounts) -> Deps:
    """The API's dependencies, every adapter a fake (nothing here talks to AWS)."""
    return Deps(
        settings=API_SETTINGS,
        store=None,
        credits=store,
        blobs=None,
        finalizer=None,
        variant_queue=None,
        fetches=None,
        webhooks=None,
        targets=None,
        keys=KeyCheck(store.account_for_key, ttl_seconds=30),
        idempotency=None,
    )


def rest_event(path: str, key: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "requestContext": {"requestId": "r", "stage": "prod", "path": f"/prod{path}"},
        "body": None,
        "isBase64Encoded": False,
    }


def test_the_api_composed_with_fakes_answers_each_key_with_its_own_accounts_balance() -> None:
    # Given the API composed with in-memory accounts
    store = Accounts()
    handler = api.lambda_handler.with_deps(fake_api(store))
    context = LambdaContext("api", 29)
    # When two keys ask for their credits, the first twice
    one = handler(rest_event("/api/credits", "enc_one"), context)
    two = handler(rest_event("/api/credits", "enc_two"), context)
    again = handler(rest_event("/api/credits", "enc_one"), context)
    denied = handler(rest_event("/api/credits", "enc_nobody"), context)
    # Then each sees its own balance and ledger, the key check remembered the first key, an unknown key is refused
    assert json.loads(one["body"])["balance"] == 70 and json.loads(again["body"])["balance"] == 70
    assert json.loads(one["body"])["entries"][0]["amount"] == 70
    assert json.loads(two["body"])["balance"] == 5
    assert denied["statusCode"] == 401 and json.loads(denied["body"])["error"] == "unauthorized"
    assert store.lookups == 3


def test_two_apis_composed_side_by_side_keep_their_own_dependencies() -> None:
    # Given two compositions of the API (two execution environments of one process, as the local runtime has)
    first, second = Accounts(), Accounts()
    second.balances["acct_one"] = 999
    context = LambdaContext("api", 29)
    # When each answers the same key
    a = api.lambda_handler.with_deps(fake_api(first))(rest_event("/api/credits", "enc_one"), context)
    b = api.lambda_handler.with_deps(fake_api(second))(rest_event("/api/credits", "enc_one"), context)
    # Then each read its own store: nothing is kept in a module global between them
    assert (json.loads(a["body"])["balance"], json.loads(b["body"])["balance"]) == (70, 999)


def test_the_authorizer_composed_with_a_fake_key_store_allows_a_known_key() -> None:
    store = Accounts()
    handler = authorizer.lambda_handler.with_deps(authorizer.Deps(keys=store))
    event = {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/api/credits",
        "path": "/api/credits",
        "headers": {"Authorization": "Bearer enc_two"},
        "httpMethod": "GET",
    }
    answer = handler(event, LambdaContext("authorizer", 10))
    assert answer["context"] == {"account_id": "acct_two"}
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"


class Knobs(BaseModel):
    """A settings model for the tests of Function itself."""

    table: str
    size: int = 3


def test_the_lambda_entry_point_composes_once_per_cold_start_from_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a function whose Deps record how often they are built
    built: list[Knobs] = []

    def deps(settings: Knobs) -> Knobs:
        built.append(settings)
        return settings

    fn = Function(Knobs, deps, lambda knobs: lambda event, context: (knobs.table, knobs.size, event))
    monkeypatch.setenv("BULKAPI_TABLE", "jobs-prod")
    # When Lambda sends it three events
    answers = [fn(n, None) for n in range(3)]
    # Then the Deps were built once, from the process environment, and every event used them
    assert answers == [("jobs-prod", 3, 0), ("jobs-prod", 3, 1), ("jobs-prod", 3, 2)]
    assert len(built) == 1
    # And a composition from another environment is separate (the local runtime: each function its own)
    assert fn.build({"BULKAPI_TABLE": "jobs-dev", "BULKAPI_SIZE": "9"})("e", None) == ("jobs-dev", 9, "e")
    assert fn(4, None) == ("jobs-prod", 3, 4)


def test_a_missing_or_bad_setting_fails_the_composition_naming_it() -> None:
    fn = Function(Knobs, lambda s: s, lambda knobs: lambda event, context: None)
    with pytest.raises(ValidationError, match="table"):
        fn.build({})
    with pytest.raises(ValidationError, match="size"):
        fn.build({"BULKAPI_TABLE": "t", "BULKAPI_SIZE": "many"})


@pytest.mark.parametrize("name", sorted(set(FUNCTION_SETTINGS) - {"stream"}))
def test_every_handler_is_a_composition_root_reading_the_settings_its_stack_environment_is_made_from(
    name: str,
) -> None:
    # The stack derives each function's environment from FUNCTION_SETTINGS; the handler must read that same model.
    entry = importlib.import_module(f"functions.handlers.{name}").lambda_handler
    assert isinstance(entry, Function)
    assert entry.settings is FUNCTION_SETTINGS[name]


class BrokenLedger(Accounts):
    """A store whose ledger entries lack fields the response model requires (a defect on our side)."""

    def ledger_page(
        self, account_id: str, limit: int = 50, after: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        return [{"kind": "grant"}], None


def test_an_answer_that_breaks_its_own_model_is_our_error_not_the_clients() -> None:
    # Given a store that returns ledger entries the response model refuses
    handler = api.lambda_handler.with_deps(fake_api(BrokenLedger()))
    # When the credits are asked for
    answer = handler(rest_event("/api/credits", "enc_one"), LambdaContext("api", 29))
    # Then it is a 500 without internals (a client must not be told to fix a parameter it never sent)
    assert answer["statusCode"] == 500
    assert json.loads(answer["body"])["error"] == "internal_error"
