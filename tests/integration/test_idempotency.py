"""Idempotency-Key on job creation: one job and one charge per key, reuse with another body refused."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from functions.adapters.accounts import AccountStore
from functions.adapters.credits import CreditStore
from local.runtime import LocalRuntime
from tests.helpers import email_csv
from tests.integration.test_credits_and_drops import new_account


def post(session: Any, body: bytes, key: str) -> requests.Response:
    return session.post(
        f"{session.base}/api/bulk-jobs",
        files={"file": ("f.csv", body)},
        data={"type": "email"},
        headers={"Idempotency-Key": key},
        timeout=30,
    )


def test_retried_post_with_the_same_key_creates_one_job_and_one_charge(
    account_store: AccountStore, credit_store: CreditStore, runtime: LocalRuntime
) -> None:
    # Given an account with 1,000 credits
    account, session = new_account(account_store, runtime, 1000)
    body = email_csv(100)
    # When the same request is sent three times with one Idempotency-Key (multipart boundaries differ each time)
    answers = [post(session, body, "order-42") for _ in range(3)]
    # Then every answer is the first one: the same job, and 100 credits reserved once
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert len({a.json()["id"] for a in answers}) == 1
    assert credit_store.account_credits(account) == 900
    listed = session.get(f"{session.base}/api/bulk-jobs", timeout=30).json()["jobs"]
    assert len(listed) == 1


def test_same_key_with_a_different_body_is_422(account_store: AccountStore, runtime: LocalRuntime) -> None:
    _, session = new_account(account_store, runtime, 1000)
    assert post(session, email_csv(10), "k1").status_code == 202
    # When the key is reused for another file
    resp = post(session, email_csv(11), "k1")
    # Then it is refused with a code
    assert resp.status_code == 422 and resp.json()["error"] == "idempotency_key_reused"


def test_keys_are_per_account(account_store: AccountStore, runtime: LocalRuntime) -> None:
    _, first = new_account(account_store, runtime, 1000)
    _, second = new_account(account_store, runtime, 1000)
    a = post(first, email_csv(10), "shared-key").json()["id"]
    b = post(second, email_csv(10), "shared-key").json()["id"]
    assert a != b


def test_concurrent_duplicates_give_one_job_and_409_with_retry_after(
    account_store: AccountStore, credit_store: CreditStore, runtime: LocalRuntime
) -> None:
    account, session = new_account(account_store, runtime, 1000)
    body = email_csv(200)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: post(session, body, "burst"), range(4)))
    created = {a.json()["id"] for a in answers if a.status_code == 202}
    assert len(created) == 1
    for a in answers:
        if a.status_code != 202:
            assert a.status_code == 409 and a.json()["error"] == "idempotency_in_progress"
            assert a.headers["Retry-After"] == "1"
    assert credit_store.account_credits(account) == 800
