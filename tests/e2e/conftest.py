"""`bulkapi serve` as a subprocess, talked to over HTTP like a user would."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from functions.adapters.accounts import AccountStore
from functions.adapters.credits import CreditStore
from functions.logic.jobs import utcnow
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    """A running `bulkapi serve`."""

    base_url: str
    api_key: str
    s3_endpoint: str
    bucket: str
    table: str
    process: subprocess.Popen[str]
    log_path: Path | None = None
    # The file (mode 0600) in which bulkapi serve hands its own AWS keys to the operator's tools.
    credentials_path: Path | None = None

    def aws(self, service: str, config: Any = None) -> Any:
        """A boto3 client on the emulation with the runtime's keys (the only ones it accepts besides the functions')."""
        assert self.credentials_path is not None
        keys = json.loads(self.credentials_path.read_text())
        return boto3.client(
            service,
            endpoint_url=self.s3_endpoint,
            region_name="us-east-1",
            aws_access_key_id=keys["access_key_id"],
            aws_secret_access_key=keys["secret_access_key"],
            config=config,
        )

    def session(self, key: str | None = None) -> requests.Session:
        """An HTTP session sending `key` (the dev key by default) as Bearer token."""
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {key or self.api_key}"
        return s


@dataclass
class Account:
    """An account written straight into the local table, with its own key."""

    key: str
    id: str
    credits: CreditStore
    accounts: AccountStore

    @property
    def balance(self) -> int:
        """The account's credits now."""
        return self.credits.account_credits(self.id) or 0

    def entries(self) -> list[dict[str, Any]]:
        """Every ledger entry of the account, newest first."""
        return self.credits.ledger(self.id, limit=10_000)

    def assert_balanced(self) -> None:
        """The invariant: the balance never went below zero and equals the sum of the account's ledger."""
        balance = self.balance
        assert balance >= 0
        assert balance == sum(int(e["amount"]) for e in self.entries()), (balance, self.entries())


def new_account(server: Server, credits: int) -> Account:
    """A second account with its own key (faster than the admin command for tests that only need one)."""
    ddb = server.aws("dynamodb")
    accounts = AccountStore(server.table, client=ddb)
    account_id = "acct_" + secrets.token_hex(4)
    key = "enc_test_" + secrets.token_hex(12)
    accounts.create_account(account_id, "Test", credits, utcnow())
    accounts.put_api_key(key, account_id, "key_" + account_id, utcnow())
    return Account(key, account_id, CreditStore(server.table, client=ddb), accounts)


def post_job(
    session: requests.Session, server: Server, body: bytes, job_type: str = "email", filename: str = "leads.csv"
) -> requests.Response:
    """Create a job from a CSV through the multipart form."""
    return session.post(
        f"{server.base_url}/api/bulk-jobs",
        files={"file": (filename, body, "text/csv")},
        data={"type": job_type},
        timeout=60,
    )


def status(session: requests.Session, server: Server, job_id: str) -> dict[str, Any]:
    """A job's status (it must exist)."""
    resp = session.get(f"{server.base_url}/api/bulk-jobs", params={"id": job_id}, timeout=30)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def wait_ended(
    session: requests.Session, server: Server, job_id: str, *, timeout: float, interval: float = 0.5
) -> dict[str, Any]:
    """The job's status once it is completed or failed."""
    return wait_for(
        lambda: (s := status(session, server, job_id))["status"] in ("completed", "failed") and s,
        timeout=timeout,
        interval=interval,
        what="the job to end",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(tmp: Path, *args: str, host: str | None = None, **env: str) -> Server:
    # Port 0: the server binds any free port and prints it. A port chosen here and bound by the server seconds later
    # was taken in between once (CI: "Address already in use").
    log_path = tmp / f"serve-{uuid.uuid4().hex[:8]}.log"
    log = log_path.open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "local.cli", "serve", "--port", "0", *(["--host", host] if host else []), *args],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env={**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BULKAPI_", "MOTO_"))}, **env},
    )

    def ready() -> str | None:
        if proc.poll() is not None:
            log.seek(0)
            raise AssertionError(f"bulkapi serve exited:\n{log.read()[-3000:]}")
        log.seek(0)
        text = log.read()
        return text if "Ctrl-C stops everything" in text else None

    text = wait_for(ready, timeout=120, interval=0.2, what="bulkapi serve to be ready")
    fields = dict(re.findall(r"^\s+([\w ]+?):\s+(\S+)", text, re.MULTILINE))
    server = Server(
        fields["API"],
        fields["API key"],
        fields["S3 endpoint"],
        fields["upload bucket"],
        fields["jobs table"],
        proc,
        log_path,
        Path(fields["credentials"]),
    )
    health = requests.get(f"{server.base_url}/api/health", timeout=5)
    assert health.status_code == 200
    return server


def children(pid: int) -> list[int]:
    """The live processes whose parent is `pid` (the emulation, the function processes)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def stop_server(server: Server) -> None:
    """Ctrl-C as a terminal sends it (to the server and everything it started); all of it must end."""
    started = children(server.process.pid)
    for pid in [server.process.pid, *started]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        raise
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in started), timeout=15, what="its processes")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The local API with the default settings and a known dev key."""
    srv = start_server(tmp_path_factory.mktemp("serve"), BULKAPI_DEV_TOKEN="e2e-dev-key", BULKAPI_DEV_CREDITS="100000")
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Small batches and one worker at a time, so a job runs long enough to be cancelled midway."""
    srv = start_server(tmp_path_factory.mktemp("slow"), BULKAPI_ROWS_PER_BATCH="25", BULKAPI_LOCAL_CONCURRENCY="1")
    yield srv
    stop_server(srv)
