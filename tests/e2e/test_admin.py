"""`bulkapi admin` against a running `bulkapi serve`: accounts, keys (hashed, revocable), isolation."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
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


def admin(server: Server, *args: str) -> dict[str, Any]:
    port = str(urlsplit(server.base_url).port)
    out = subprocess.run(
        [sys.executable, "-m", "local.cli", "admin", "--port", port, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
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
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=admin_server.s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    dump = json.dumps(ddb.scan(TableName=admin_server.table)["Items"])
    assert key not in dump
    # When the key is revoked
    revoked = admin(admin_server, "revoke-key", issued["key_id"])
    assert revoked == {"key_id": issued["key_id"], "account_id": account["account_id"], "revoked": True}
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
