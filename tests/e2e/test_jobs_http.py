"""A user's journey over HTTP against `bulkapi serve`: create, poll, download, cancel, and the refusals."""

from __future__ import annotations

import pytest
import requests

from tests.e2e.conftest import Server, new_account, post_job, status
from tests.helpers import email_csv, parse_result, wait_for

pytestmark = pytest.mark.e2e


def other_account(server: Server, credits: int) -> str:
    """The key of a second account."""
    return new_account(server, credits).key


def test_ten_thousand_row_job_completes_with_every_row_once_in_order(server: Server) -> None:
    # Given a 10,000-row CSV exported from a CRM, some addresses invalid
    session = server.session()
    body = email_csv(10_000, bad_every=100)
    # When it is posted as an email job
    created = post_job(session, server, body)
    assert created.status_code == 202, created.text
    job = created.json()
    assert set(job) >= {"id", "status", "total_rows", "processed", "created_at"}
    assert job["total_rows"] == 10_000 and job["status"] in ("queued", "processing")
    # Then it completes, with progress counters that add up
    final = wait_for(
        lambda: (s := status(session, server, job["id"]))["status"] == "completed" and s,
        timeout=120,
        what="the job to complete",
    )
    assert (final["processed"], final["succeeded"], final["invalid"], final["failed"]) == (10_000, 9_900, 100, 0)
    assert final["percent"] == 100.0 and final["credits_used"] == 9_900 and final["completed_at"]
    # And the download holds every input row exactly once, in input order, original columns first
    resp = session.get(f"{server.base_url}/api/bulk-jobs/download", params={"id": job["id"]}, timeout=60)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
    rows = parse_result(resp.content)
    assert [r["Row"] for r in rows] == [str(i) for i in range(10_000)]
    header = list(rows[0].keys())
    assert header[:3] == ["Name", "Email", "Row"] and header[-2:] == ["status", "error"]
    assert rows[99]["status"] == "invalid" and rows[99]["error"] == "invalid_email"
    assert rows[0]["status"] == "ok" and rows[0]["validity"] == "valid"


def test_cancel_mid_run_keeps_exactly_the_processed_rows(slow_server: Server) -> None:
    # Given a large job running with small batches
    session = slow_server.session()
    job_id = post_job(session, slow_server, email_csv(10_000)).json()["id"]
    wait_for(
        lambda: status(session, slow_server, job_id)["processed"] > 0,
        timeout=60,
        interval=0.05,
        what="the first rows to be processed",
    )
    # When the user cancels it
    resp = session.delete(f"{slow_server.base_url}/api/bulk-jobs", params={"id": job_id}, timeout=30)
    # Then it is cancelled at once
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    final = wait_for(
        lambda: (s := status(session, slow_server, job_id))["result_ready"] and s, timeout=60, what="the partial result"
    )
    assert final["status"] == "cancelled" and 0 < final["processed"] < 10_000
    # And the download holds exactly the processed rows, each once, in input order
    rows = parse_result(
        session.get(f"{slow_server.base_url}/api/bulk-jobs/download", params={"id": job_id}, timeout=60).content
    )
    numbers = [int(r["Row"]) for r in rows]
    assert len(numbers) == final["processed"]
    assert numbers == sorted(set(numbers))
    # (A cancel never purges; `purge=true` does: tests/e2e/test_results_http.py)


def test_requests_without_a_valid_key_get_401(server: Server) -> None:
    # Given no key, a malformed header and an unknown key
    for headers in ({}, {"Authorization": "Token abc"}, {"Authorization": "Bearer nope"}):
        # When they ask for a job
        resp = requests.get(f"{server.base_url}/api/bulk-jobs", params={"id": "job_x"}, headers=headers, timeout=10)
        # Then they get 401 with a machine-readable code and a message
        assert resp.status_code == 401
        assert resp.json()["error"] == "unauthorized" and resp.json()["message"]
    # While health answers without a key
    assert requests.get(f"{server.base_url}/api/health", timeout=10).status_code == 200


def test_another_accounts_job_is_404_everywhere(server: Server) -> None:
    # Given a job of the dev account and a second account
    owner = server.session()
    job_id = post_job(owner, server, email_csv(10)).json()["id"]
    stranger = server.session(other_account(server, credits=1000))
    # When the second account asks for it, its result or to cancel it
    for method, path in (("GET", "/api/bulk-jobs"), ("GET", "/api/bulk-jobs/download"), ("DELETE", "/api/bulk-jobs")):
        resp = stranger.request(method, f"{server.base_url}{path}", params={"id": job_id}, timeout=10)
        # Then the job does not exist for it
        assert resp.status_code == 404, (method, path, resp.text)
        assert resp.json()["error"] == "job_not_found"


def test_job_larger_than_the_balance_is_refused_with_402(server: Server) -> None:
    # Given an account with 50 credits
    poor = server.session(other_account(server, credits=50))
    # When it posts 51 rows
    resp = post_job(poor, server, email_csv(51))
    # Then it is refused before any work, with what it needs and what it has
    assert resp.status_code == 402
    body = resp.json()
    assert (body["error"], body["required"], body["balance"]) == ("insufficient_credits", 51, 50)
    # While 50 rows are accepted
    assert post_job(poor, server, email_csv(50)).status_code == 202


@pytest.mark.parametrize(
    ("body", "job_type", "status_code", "code"),
    [
        (b"", "email", 400, "empty_file"),
        (b"Email\r\n", "email", 400, "no_rows"),
        (b"a@example.com\n", "fax", 400, "unsupported_type"),
        # A ZIP or workbook is read (tests/e2e/test_input_formats.py); a damaged one is refused as such
        (b"PK\x03\x04\x14\x00\x06\x00binary-xlsx" + bytes(range(256)), "email", 400, "invalid_archive"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(256), "email", 400, "unsupported_format"),
        (b"Name,City\r\nAda,London\r\nBob,Paris\r\n", "email", 400, "column_not_found"),
        # Up to 1,000,000 rows a job, but a form through the API carries at most 4 MiB (larger: a presigned upload)
        (email_csv(120_000), "email", 413, "file_too_large"),
    ],
)
def test_bad_files_are_refused_with_a_code(
    server: Server, body: bytes, job_type: str, status_code: int, code: str
) -> None:
    # When a file that cannot become a job is posted
    resp = post_job(server.session(), server, body, job_type)
    # Then the answer says why, machine-readably
    assert resp.status_code == status_code, resp.text
    assert resp.json()["error"] == code and resp.json()["message"]


def test_download_before_the_end_is_409(slow_server: Server) -> None:
    # Given a job that is still running
    session = slow_server.session()
    job_id = post_job(session, slow_server, email_csv(3000)).json()["id"]
    # When its result is asked for at once
    resp = session.get(f"{slow_server.base_url}/api/bulk-jobs/download", params={"id": job_id}, timeout=10)
    # Then the answer is 409 job_not_finished
    assert resp.status_code == 409 and resp.json()["error"] == "job_not_finished"
    session.delete(f"{slow_server.base_url}/api/bulk-jobs", params={"id": job_id}, timeout=10)
