"""Randomized: jobs, inline requests, cancels and purges, disconnects and parallel requests against one balance.

After every step: the balance is never below zero, equals the sum of the account's ledger entries, and no `ok`
result was ever sent unpaid. At the end every job's result agrees with what it was charged. The seed is printed
(and can be set with BULKAPI_TEST_SEED) so a failure can be replayed.
"""

from __future__ import annotations

import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Account, Server, new_account
from tests.e2e.test_sse import Stream
from tests.helpers import parse_result, wait_for

pytestmark = pytest.mark.e2e

STEPS = 30
START = 150


@dataclass
class Books:
    """What the client saw: ok results per request id, jobs created, and jobs purged (with what they had used)."""

    inline_ok: dict[str, int] = field(default_factory=dict)
    jobs: list[str] = field(default_factory=list)
    purged: dict[str, int | None] = field(default_factory=dict)


def addresses(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.15:
            out.append(rng.choice(["nope", "", "a@", "@b.com"]))
        elif roll < 0.3 and out:
            out.append(rng.choice(out).upper())  # a duplicate: answered again, charged once
        else:
            out.append(f"p{rng.randrange(10**9)}.x@example{rng.randrange(5)}.com")
    return out


def snapshot(account: Account) -> tuple[int, list[dict[str, Any]]]:
    """Balance and ledger read consistently: the ledger did not move while the balance was read."""
    for _ in range(50):
        before = account.entries()
        balance = account.balance
        if account.entries() == before:
            return balance, before
    raise AssertionError("the ledger never held still")


def check(account: Account, books: Books) -> None:
    balance, entries = snapshot(account)
    assert balance >= 0
    assert balance == sum(int(e["amount"]) for e in entries), (balance, entries)
    for request_id, oks in books.inline_ok.items():
        paid = -sum(int(e["amount"]) for e in entries if e["request_id"] == request_id and e["job_id"] is None)
        assert paid >= oks, f"request {request_id} was sent {oks} distinct ok results and paid {paid}"


def inline(server: Server, account: Account, items: list[str], books: Books) -> None:
    resp = requests.post(
        f"{server.base_url}/api/bulk-lookup",
        json={"emails": items},
        headers={"Authorization": f"Bearer {account.key}"},
        timeout=60,
    )
    if resp.status_code == 402:
        return
    assert resp.status_code == 200, resp.text
    assert resp.text.endswith("data: [DONE]\n\n")
    frames = [json.loads(line[6:]) for line in resp.text.split("\n") if line.startswith("data: {")]
    assert len(frames) == len(items)
    request_id = resp.headers["X-Request-Id"]
    books.inline_ok[request_id] = len({f["email"].lower() for f in frames if "error" not in f})
    done = json.loads(next(line for line in resp.text.split("\n") if line.startswith(": done "))[7:])
    assert done["credits_used"] == _paid(account, request_id)


def disconnect(server: Server, account: Account, items: list[str], books: Books) -> None:
    stream = Stream(server.base_url, account.key, "/api/bulk-lookup", {"emails": items})
    if stream.resp.status == 402:
        stream.resp.read()
        return
    request_id = stream.resp.getheader("X-Request-Id")
    assert request_id
    first = next(stream.blocks())
    stream.close()
    books.inline_ok[request_id] = 1 if first.event == "result" else 0
    # The server settles once it sees the client gone: the reservation record is consumed by the refund.
    wait_for(lambda: not _open_reservation(account, request_id) or None, timeout=10, what="the stream to settle")


def _open_reservation(account: Account, request_id: str) -> bool:
    key = {"pk": {"S": f"ACCOUNT#{account.id}"}, "sk": {"S": f"INLINE#{request_id}"}}
    return "Item" in account.credits.ddb.get_item(TableName=account.credits.table, Key=key, ConsistentRead=True)


def _paid(account: Account, request_id: str) -> int:
    return -sum(int(e["amount"]) for e in account.entries() if e["request_id"] == request_id and e["job_id"] is None)


def job(server: Server, account: Account, rng: random.Random, books: Books) -> None:
    rows = addresses(rng, rng.randrange(5, 40))
    body = ("email\n" + "\n".join(r.replace(",", "") for r in rows) + "\n").encode()
    resp = account_session(account).post(
        f"{server.base_url}/api/bulk-jobs",
        files={"file": ("leads.csv", body, "text/csv")},
        data={"type": "email"},
        timeout=60,
    )
    assert resp.status_code in (202, 400, 402), resp.text
    if resp.status_code == 202:
        books.jobs.append(resp.json()["id"])


def cancel(server: Server, account: Account, rng: random.Random, books: Books) -> None:
    """DELETE cancels a running job (an ended one answers 409); `purge=true` purges an ended one (its ledger stays)."""
    if books.jobs:
        session, job_id = account_session(account), rng.choice(books.jobs)
        before = session.get(f"{server.base_url}/api/bulk-jobs", params={"id": job_id}, timeout=30).json()
        params = {"id": job_id, **({"purge": "true"} if rng.random() < 0.5 else {})}
        resp = session.delete(f"{server.base_url}/api/bulk-jobs", params=params, timeout=30)
        assert resp.status_code in (200, 409), resp.text
        if resp.status_code == 200 and resp.json()["status"] == "deleted":
            assert "purge" in params, "a cancel never purges"
            books.jobs.remove(job_id)
            # Counters stop moving when a job ends: what an ended job had used is what it was charged.
            ended = before["status"] in ("completed", "failed", "cancelled")
            books.purged[job_id] = before["credits_used"] if ended else None


def account_session(account: Account) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {account.key}"
    return session


def test_the_balance_always_equals_the_ledger_and_no_ok_result_is_unpaid(server: Server) -> None:
    seed = int(os.environ.get("BULKAPI_TEST_SEED", str(int(time.time()))))
    print(f"seed {seed}")
    rng = random.Random(seed)
    account = new_account(server, START)
    books = Books()
    for _ in range(STEPS):
        step = rng.choice(["inline", "inline", "disconnect", "parallel", "job", "job", "cancel"])
        if step == "inline":
            inline(server, account, addresses(rng, rng.randrange(1, 40)), books)
        elif step == "disconnect":
            disconnect(server, account, addresses(rng, rng.randrange(20, 60)), books)
        elif step == "parallel":
            batches = [addresses(rng, rng.randrange(10, 60)) for _ in range(4)]
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda items: inline(server, account, items, books), batches))
        elif step == "job":
            job(server, account, rng, books)
        else:
            cancel(server, account, rng, books)
        check(account, books)
    # Every job ends, settles, and was charged exactly its ok rows
    session = account_session(account)
    for job_id in books.jobs:
        final = wait_for(
            lambda job_id=job_id: (
                (s := session.get(f"{server.base_url}/api/bulk-jobs", params={"id": job_id}, timeout=30).json())[
                    "status"
                ]
                in ("completed", "failed", "cancelled")
                and s
            ),
            timeout=60,
            what=f"job {job_id} to end",
        )
        wait_for(
            lambda job_id=job_id, final=final: (
                -sum(int(e["amount"]) for e in account.entries() if e["job_id"] == job_id) == final["credits_used"]
                or None
            ),
            timeout=30,
            what=f"job {job_id} to settle",
        )
        if final["status"] == "completed":
            result = session.get(f"{server.base_url}/api/bulk-jobs/download", params={"id": job_id}, timeout=30)
            rows = parse_result(result.content)
            oks = sum(row["status"] == "ok" for row in rows)
            # A repeated address is answered again (duplicate_of) and charged once.
            firsts = sum(row["status"] == "ok" and not row["duplicate_of"] for row in rows)
            assert firsts == final["credits_used"] and oks == final["succeeded"]
        check(account, books)
    # And a purged job's ledger entries are all still there: it was charged exactly what it had used
    for job_id, used in books.purged.items():
        entries = [e for e in account.entries() if e["job_id"] == job_id]
        assert "reserve" in {e["kind"] for e in entries}, job_id
        if used is not None:
            assert -sum(int(e["amount"]) for e in entries) == used, (job_id, entries)
