"""`bulkapi admin` against a running `bulkapi serve`: accounts, keys (hashed, revocable), isolation."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e.conftest import ROOT, Server, start_server, stop_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # No key caching anywhere (the api function's, the authorizer's): a revoked key answers 401 on the next request.
    srv = start_server(
        tmp_path_factory.mktemp("admin"), BULKAPI_KEY_CACHE_SECONDS="0", BULKAPI_LOCAL_AUTHORIZER_CACHE_SECONDS="0"
    )
    yield srv
    stop_server(srv)


def run_admin(server: Server, *args: str, port_after: bool = False) -> subprocess.CompletedProcess[str]:
    port = ["--port", str(urlsplit(server.base_url).port)]
    command = ["admin", *args, *port] if port_after else ["admin", *port, *args]
    return subprocess.run(
        [sys.executable, "-m", "local.cli", *command], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def admin(server: Server, *args: str, port_after: bool = False) -> dict[str, Any]:
    out = run_admin(server, *args, port_after=port_after)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def test_accounts_and_keys_lifecycle(admin_server: Server) -> None:
    # Given an account created with 500 credits and a live key for it
    account = admin(admin_server, "create-account", "Acme Corp", "--credits", "500")
    issued = admin(admin_server, "create-key", account["account_id"])
    key = issued["api_key"]
    assert key.startswith("enc_live_") and issued["key_id"].startswith("key_")
    assert admin(admin_server, "create-key", account["account_id"], "--test")["api_key"].startswith("enc_test_")
    # Then the key works and sees that balance
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    credits = session.get(f"{admin_server.base_url}/api/credits", timeout=10).json()
    assert credits["balance"] == 500 and credits["entries"][0]["kind"] == "grant"
    # And the table holds only its hash, never the key itself
    ddb = admin_server.aws("dynamodb")
    dump = json.dumps(ddb.scan(TableName=admin_server.table)["Items"])
    assert key not in dump
    # When the key is revoked
    revoked = admin(admin_server, "revoke-key", issued["key_id"])
    assert revoked["key_id"] == issued["key_id"] and revoked["account_id"] == account["account_id"]
    # (this server caches no keys: every instance refuses it from the moment it is revoked)
    assert revoked["revoked"] is True and revoked["rejected_everywhere_by"] == revoked["revoked_at"]
    # Then it answers 401
    resp = session.get(f"{admin_server.base_url}/api/credits", timeout=10)
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized"


def test_unknown_account_or_key_is_an_error(admin_server: Server) -> None:
    port = str(urlsplit(admin_server.base_url).port)
    out = subprocess.run(
        [sys.executable, "-m", "local.cli", "admin", "--port", port, "create-key", "acct_nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 1 and json.loads(out.stderr)["error"] == "account_not_found"
    out = subprocess.run(
        [sys.executable, "-m", "local.cli", "admin", "--port", port, "revoke-key", "key_nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 1 and json.loads(out.stderr)["error"] == "key_not_found"


def test_credits_and_listings_with_options_after_the_subcommand(admin_server: Server) -> None:
    # Given an account created with the port named after the subcommand, as people type it
    account = admin(admin_server, "create-account", "Globex", "--credits", "100", port_after=True)
    account_id = account["account_id"]
    # When credits are added to it
    added = admin(admin_server, "add-credits", account_id, "250", port_after=True)
    # Then the balance grows and the ledger has a grant entry for it: the balance is still the ledger's sum
    assert added == {"account_id": account_id, "added": 250, "balance": 350}
    key = admin(admin_server, "create-key", account_id)["api_key"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    credits = session.get(f"{admin_server.base_url}/api/credits", timeout=10).json()
    assert credits["balance"] == 350 == sum(e["amount"] for e in credits["entries"])
    assert [(e["kind"], e["amount"]) for e in credits["entries"]] == [("grant", 250), ("grant", 100)]
    # And the account is listed with its balance
    listed = {a["account_id"]: a for a in admin(admin_server, "list-accounts", port_after=True)["accounts"]}
    assert listed[account_id]["name"] == "Globex" and listed[account_id]["credits"] == 350
    # And its keys are listed by id, never the key itself, revoked ones with the time
    second = admin(admin_server, "create-key", account_id, "--test")
    admin(admin_server, "revoke-key", second["key_id"], port_after=True)
    keys = admin(admin_server, "list-keys", account_id, port_after=True)
    assert keys["account_id"] == account_id and len(keys["keys"]) == 2
    revoked = {k["key_id"]: k["revoked_at"] for k in keys["keys"]}
    assert revoked[second["key_id"]] is not None and sum(v is None for v in revoked.values()) == 1
    assert key not in json.dumps(keys) and second["api_key"] not in json.dumps(keys)


def test_add_credits_refuses_an_unknown_account_or_a_non_positive_amount(admin_server: Server) -> None:
    unknown = run_admin(admin_server, "add-credits", "acct_nope", "10")
    assert unknown.returncode == 1 and json.loads(unknown.stderr)["error"] == "account_not_found"
    account_id = admin(admin_server, "create-account", "Initech")["account_id"]
    zero = run_admin(admin_server, "add-credits", account_id, "0")
    assert zero.returncode == 1 and json.loads(zero.stderr)["error"] == "invalid_credits"
    assert run_admin(admin_server, "list-keys", "acct_nope").returncode == 1
