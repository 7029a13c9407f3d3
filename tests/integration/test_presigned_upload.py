"""Presigned uploads against the local runtime: the form works on the emulation's S3, the landed file is counted and
reserved before any work, and the same Idempotency-Key rules apply as for form uploads."""

from __future__ import annotations

from typing import Any

import requests

from functions.adapters.accounts import AccountStore
from functions.adapters.credits import CreditStore
from local.runtime import LocalRuntime
from tests.helpers import email_csv, parse_result, wait_for
from tests.integration.test_credits_and_drops import new_account


def create(session: Any, body: dict[str, Any], **headers: str) -> requests.Response:
    return session.post(f"{session.base}/api/bulk-jobs", json=body, headers=headers, timeout=30)


def upload(form: dict[str, Any], data: bytes) -> requests.Response:
    # What a browser or `curl -F` does: every field of the form, then the file as the last field.
    return requests.post(form["url"], data=form["fields"], files={"file": ("leads.csv", data)}, timeout=60)


def job_status(session: Any, job_id: str) -> dict[str, Any]:
    return dict(session.get(f"{session.base}/api/bulk-jobs", params={"id": job_id}, timeout=30).json())


def test_a_file_sent_through_the_presigned_form_is_counted_reserved_and_processed(
    account_store: AccountStore, credit_store: CreditStore, runtime: LocalRuntime
) -> None:
    # Given an account with 1,000 credits
    account, session = new_account(account_store, runtime, 1000)
    # When it asks for a job of a file it uploads itself
    created = create(session, {"type": "email", "filename": "leads.csv"})
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["status"] == "awaiting_upload" and job["total_rows"] is None
    assert job["upload"]["method"] == "POST" and job["upload"]["fields"]["key"].endswith(f"/{job['id']}.csv")
    # Then nothing is reserved while it waits
    assert credit_store.account_credits(account) == 1000
    assert job_status(session, job["id"])["status"] == "awaiting_upload"
    # When the file goes to S3 through the form (the emulation's S3, reachable on this machine)
    sent = upload(job["upload"], email_csv(300, bad_every=10))
    assert sent.status_code == 204, sent.text
    # Then the job runs to the end, having reserved its 300 rows, and charges the 270 valid ones
    final = wait_for(lambda: (s := job_status(session, job["id"]))["status"] == "completed" and s, what="completion")
    assert (final["total_rows"], final["succeeded"], final["invalid"]) == (300, 270, 30)
    assert (final["credits_reserved"], final["credits_used"], final["filename"]) == (300, 270, "leads.csv")
    assert credit_store.account_credits(account) == 730
    kinds = sorted((e["kind"], e["amount"]) for e in credit_store.ledger(account))
    assert kinds == [("grant", 1000), ("refund", 30), ("reserve", -300)]
    result = session.get(f"{session.base}/api/bulk-jobs/download", params={"id": job["id"]}, timeout=30)
    assert [r["Row"] for r in parse_result(result.content)] == [str(i) for i in range(300)]


def test_an_uploaded_file_over_the_balance_ends_the_job_failed_with_nothing_charged(
    account_store: AccountStore, credit_store: CreditStore, runtime: LocalRuntime
) -> None:
    # Given an account with 10 credits and a job waiting for its upload
    account, session = new_account(account_store, runtime, 10)
    job = create(session, {"type": "email", "filename": "big.csv"}).json()
    # When a 20-row file arrives
    assert upload(job["upload"], email_csv(20)).status_code == 204
    # Then the job fails with insufficient_credits, processed nothing, and the balance is untouched
    final = wait_for(lambda: (s := job_status(session, job["id"]))["status"] == "failed" and s, what="the failure")
    assert final["error"] == "insufficient_credits" and final["processed"] == 0
    assert credit_store.account_credits(account) == 10
    assert [e["kind"] for e in credit_store.ledger(account)] == ["grant"]


def test_the_same_idempotency_key_gives_the_same_job_and_another_body_is_refused(
    account_store: AccountStore, runtime: LocalRuntime
) -> None:
    _, session = new_account(account_store, runtime, 100)
    body = {"type": "email", "filename": "leads.csv"}
    first = create(session, body, **{"Idempotency-Key": "upload-1"})
    again = create(session, body, **{"Idempotency-Key": "upload-1"})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.json()["upload"] == first.json()["upload"]
    other = create(session, {**body, "filename": "other.csv"}, **{"Idempotency-Key": "upload-1"})
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
    listed = session.get(f"{session.base}/api/bulk-jobs", timeout=30).json()["jobs"]
    assert [j["id"] for j in listed] == [first.json()["id"]]


def test_a_job_waiting_for_its_upload_can_be_cancelled_and_a_late_file_is_then_ignored(
    account_store: AccountStore, credit_store: CreditStore, runtime: LocalRuntime
) -> None:
    account, session = new_account(account_store, runtime, 100)
    job = create(session, {"type": "email", "filename": "leads.csv"}).json()
    cancelled = session.delete(f"{session.base}/api/bulk-jobs", params={"id": job["id"]}, timeout=30)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    # A file sent afterwards starts nothing and costs nothing
    assert upload(job["upload"], email_csv(5)).status_code == 204
    wait_for(lambda: job_status(session, job["id"])["result_ready"], what="the cancelled job to be finalized")
    final = job_status(session, job["id"])
    assert (final["status"], final["processed"], final["credits_reserved"]) == ("cancelled", 0, 0)
    assert credit_store.account_credits(account) == 100
