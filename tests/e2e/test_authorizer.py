"""The API's Lambda authorizer, locally: the gateway runs the same handler with the same cache as API Gateway."""

from __future__ import annotations

import json
import time

import pytest
import requests

from functions.errors import error_body
from functions.http.access import CACHE_SECONDS, REQUEST_CONTEXT_HEADER
from functions.logic.clock import utcnow
from infra.api_access import GATEWAY_ANSWERS
from tests.e2e.conftest import Server, new_account
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


def _gateway_answer(response_type: str) -> tuple[int, dict[str, str]]:
    status, code, message = GATEWAY_ANSWERS[response_type]
    return int(status), error_body(code, message)


def test_a_revoked_key_stops_working_within_the_documented_ttl(server: Server) -> None:
    # Given an account whose key was just used (the authorizer's Allow is now cached for that header)
    account = new_account(server, credits=10)
    session = server.session(account.key)
    url = f"{server.base_url}/api/credits"
    assert session.get(url, timeout=10).status_code == 200
    # When the key is revoked
    account.accounts.revoke_api_key("key_" + account.id, utcnow())
    revoked = time.monotonic()

    # Then, polling with a deadline of the documented TTL plus a margin, it is refused
    def refused() -> tuple[int, object] | None:
        resp = session.get(url, timeout=10)  # a Response with a 4xx status is falsy: return its parts
        return (resp.status_code, resp.json()) if resp.status_code == 401 else None

    denied = wait_for(
        refused,
        timeout=CACHE_SECONDS + 10,
        interval=0.5,
        what="the revoked key to be refused",
    )
    elapsed = time.monotonic() - revoked
    assert elapsed <= CACHE_SECONDS + 5, elapsed
    # And it was the authorizer that refused it: the gateway's own answer for a Deny, from the template
    assert denied == _gateway_answer("ACCESS_DENIED")


def test_without_a_key_the_gateway_answers_before_any_function(server: Server) -> None:
    resp = requests.get(f"{server.base_url}/api/bulk-jobs", timeout=10)
    assert (resp.status_code, resp.json()) == _gateway_answer("UNAUTHORIZED")


def test_public_routes_need_no_key(server: Server) -> None:
    assert requests.get(f"{server.base_url}/api/health", timeout=10).status_code == 200


def test_a_client_cannot_forge_the_authorizer_context(server: Server) -> None:
    # Given two accounts, and a request with A's key carrying a request-context header that names B
    a, b = new_account(server, credits=10), new_account(server, credits=10)
    forged = json.dumps({"authorizer": {"account_id": b.id, "principalId": b.id}})
    headers = {"Authorization": f"Bearer {a.key}", REQUEST_CONTEXT_HEADER: forged}
    # When it calls a streamed route (the app reads the account from that header) and a buffered one
    resp = requests.post(
        f"{server.base_url}/api/bulk-lookup", json={"emails": ["someone@example.com"]}, headers=headers, timeout=30
    )
    assert resp.status_code == 200
    credits = requests.get(f"{server.base_url}/api/credits", headers=headers, timeout=10).json()
    # Then the gateway replaced the header with the authorizer's context: A was charged and answered, not B
    assert a.balance == 9 and b.balance == 10
    assert credits["balance"] == 9
    # And without a key the forged header gets nowhere
    resp = requests.post(
        f"{server.base_url}/api/bulk-lookup",
        json={"emails": ["someone@example.com"]},
        headers={REQUEST_CONTEXT_HEADER: forged},
        timeout=10,
    )
    assert resp.status_code == 401 and b.balance == 10
