"""Credits (reserve, settle, ledger, no overdraw), the job list, and CSV files dropped straight into the bucket."""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from functions.adapters.accounts import AccountStore
from functions.adapters.blobs import BlobStore
from functions.adapters.credits import CreditStore
from functions.logic.clock import utcnow
from local.runtime import LocalRuntime
from tests.helpers import email_csv, wait_for


def new_account(accounts: AccountStore, runtime: LocalRuntime, credits: int) -> tuple[str, requests.Session]:
    account = "acct_" + secrets.token_hex(4)
    key = "enc_test_" + secrets.token_hex(12)
    accounts.create_account(account, "Test", credits, utcnow())
    accounts.put_api_key(key, account, "key_" + account, utcnow())
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    session.base = runtime.base_url  # type: ignore[attr-defined]
    return account, session


def post(session: Any, body: bytes, job_type: str = "email") -> requests.Response:
    return session.post(
        f"{session.base}/api/bulk-jobs", files={"file": ("f.csv", body)}, data={"type": job_type}, timeout=30
    )


def job_status(session: Any, job_id: str) -> dict[str, Any]:
    return dict(session.get(f"{session.base}/api/bulk-jobs", params={"id": job_id}, timeout=30).json())


def test_credits_are_reserved_then_unused_ones_refunded_with_ledger_entries(
    account_store: AccountStore, credit_store: CreditStore, runtime: LocalRuntime
) -> None:
    # Given an account with 1,000 credits
    account, session = new_account(account_store, runtime, 1000)
    # When it runs a 100-row job where 10 rows are invalid
    created = post(session, email_csv(100, bad_every=10)).json()
    # Then 100 are reserved at once
    assert credit_store.account_credits(account) == 900
    final = wait_for(
        lambda: (s := job_status(session, created["id"]))["status"] == "completed" and s, what="completion"
    )
    # and once it ends only the 90 valid rows are charged
    assert (final["credits_reserved"], final["credits_used"]) == (100, 90)
    credits = session.get(f"{session.base}/api/credits", timeout=30).json()
    assert credits["balance"] == 910
    kinds = {(e["kind"], e["amount"], e["job_id"]) for e in credits["entries"]}
    assert kinds == {("grant", 1000, None), ("reserve", -100, created["id"]), ("refund", 10, created["id"])}
    # And the balance is the sum of the entries; the reservation names the request that made it
    assert credits["balance"] == sum(e["amount"] for e in credits["entries"])
    reserve = next(e for e in credits["entries"] if e["kind"] == "reserve")
    assert reserve["request_id"]


def test_parallel_creates_cannot_overdraw(
    account_store: AccountStore, credit_store: CreditStore, runtime: LocalRuntime
) -> None:
    # Given an account whose balance covers exactly three 40-row jobs
    account, session = new_account(account_store, runtime, 120)
    body = email_csv(40)
    # When eight jobs are posted at the same time
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(lambda _: post(session, body).status_code, range(8)))
    # Then three are accepted, the rest refused with 402, and the balance never went below zero
    assert sorted(codes) == [202] * 3 + [402] * 5
    assert credit_store.account_credits(account) == 0


def test_job_list_is_newest_first_paginated_and_filterable(account_store: AccountStore, runtime: LocalRuntime) -> None:
    # Given an account with three jobs, one of them cancelled
    _, session = new_account(account_store, runtime, 1000)
    ids = [post(session, email_csv(5)).json()["id"] for _ in range(3)]
    session.delete(f"{session.base}/api/bulk-jobs", params={"id": ids[1]}, timeout=30)
    # When it lists them two at a time
    first = session.get(f"{session.base}/api/bulk-jobs", params={"limit": 2}, timeout=30).json()
    second = session.get(
        f"{session.base}/api/bulk-jobs", params={"limit": 2, "cursor": first["next_cursor"]}, timeout=30
    ).json()
    # Then it sees all three, newest first, with no duplicates
    assert [j["id"] for j in first["jobs"] + second["jobs"]] == list(reversed(ids))
    assert second["next_cursor"] is None
    # And the status filter keeps only the cancelled one
    cancelled = session.get(f"{session.base}/api/bulk-jobs", params={"status": "cancelled"}, timeout=30).json()
    assert [j["id"] for j in cancelled["jobs"]] == [ids[1]]
    # And a forged cursor is a 400
    bad = session.get(f"{session.base}/api/bulk-jobs", params={"cursor": "!!!"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_cursor"


def test_dropped_csv_becomes_a_completed_job_in_the_list(
    account_store: AccountStore, credit_store: CreditStore, runtime: LocalRuntime
) -> None:
    # Given an account
    account, session = new_account(account_store, runtime, 1000)
    # When a CSV is put at drop/<account>/email/<name>.csv through the S3 API
    s3 = runtime.client("s3")
    s3.put_object(Bucket=runtime.bucket, Key=f"drop/{account}/email/leads.csv", Body=email_csv(60, bad_every=6))
    # Then a job of that account appears in its list and completes with the usual counts and credits
    listed = wait_for(
        lambda: session.get(f"{session.base}/api/bulk-jobs", timeout=30).json()["jobs"],
        what="the dropped job in the list",
    )
    job_id = listed[0]["id"]
    final = wait_for(lambda: (s := job_status(session, job_id))["status"] == "completed" and s, what="completion")
    assert (final["total_rows"], final["succeeded"], final["invalid"], final["filename"]) == (60, 50, 10, "leads.csv")
    assert credit_store.account_credits(account) == 950


def test_dropped_csv_with_column_metadata_uses_that_column(account_store: AccountStore, runtime: LocalRuntime) -> None:
    # Given a file with two email-looking columns, the second one named in the object's metadata
    account, session = new_account(account_store, runtime, 100)
    body = b"work,personal\r\na@corp.example,bad-address\r\nb@corp.example,also-bad\r\n"
    runtime.client("s3").put_object(
        Bucket=runtime.bucket, Key=f"drop/{account}/email/two.csv", Body=body, Metadata={"column": "personal"}
    )
    # Then the job enriches that column
    job = wait_for(
        lambda: (
            (j := session.get(f"{session.base}/api/bulk-jobs", timeout=30).json()["jobs"])
            and j[0]["status"] == "completed"
            and j[0]
        ),
        what="the dropped job",
    )
    assert (job["column"], job["invalid"], job["succeeded"]) == ("personal", 2, 0)


def test_drop_for_unknown_account_or_type_is_moved_to_rejected_with_a_reason(runtime: LocalRuntime) -> None:
    s3 = runtime.client("s3")
    blobs = BlobStore(runtime.bucket)
    # When files are dropped for an account that does not exist and for a type that does not exist
    s3.put_object(Bucket=runtime.bucket, Key="drop/acct_nobody/email/a.csv", Body=b"email\na@x.com\n")
    s3.put_object(Bucket=runtime.bucket, Key="drop/acct_dev/fax/b.csv", Body=b"email\na@x.com\n")
    # Then each is moved to rejected/ with a reason file beside it, and nothing stays under drop/
    reason_a = wait_for(
        lambda: (
            blobs.head("rejected/acct_nobody/email/a.csv.reason.json")
            and json.loads(blobs.get("rejected/acct_nobody/email/a.csv.reason.json"))
        ),
        what="reason a",
    )
    reason_b = wait_for(
        lambda: (
            blobs.head("rejected/acct_dev/fax/b.csv.reason.json")
            and json.loads(blobs.get("rejected/acct_dev/fax/b.csv.reason.json"))
        ),
        what="reason b",
    )
    assert reason_a["error"] == "unknown_account" and reason_b["error"] == "unsupported_type"
    assert blobs.head("drop/acct_nobody/email/a.csv") is None and blobs.head("rejected/acct_dev/fax/b.csv")


def test_dropped_file_over_the_balance_fails_with_a_code(
    account_store: AccountStore, credit_store: CreditStore, runtime: LocalRuntime
) -> None:
    # Given an account with 10 credits
    account, session = new_account(account_store, runtime, 10)
    # When it drops 20 rows
    runtime.client("s3").put_object(Bucket=runtime.bucket, Key=f"drop/{account}/email/big.csv", Body=email_csv(20))
    # Then the job fails with insufficient_credits visible in its status, and nothing is charged
    job = wait_for(
        lambda: (
            (j := session.get(f"{session.base}/api/bulk-jobs", timeout=30).json()["jobs"])
            and j[0]["status"] == "failed"
            and j[0]
        ),
        what="the failed job",
    )
    assert job["error"] == "insufficient_credits" and job["processed"] == 0
    assert credit_store.account_credits(account) == 10
