"""Large lists over HTTP against `bulkapi serve`: files sent straight to S3 through a presigned form, uploads that
never come, and files the service fetches from a URL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Server, new_account, start_server, stop_server
from tests.helpers import email_csv, parse_result, wait_for

pytestmark = pytest.mark.e2e

# Short-lived upload forms, swept every second, so an upload that never comes ends within seconds.
UPLOAD_TTL_SECONDS = 8


@pytest.fixture(scope="module")
def upload_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("large"),
        BULKAPI_DEV_TOKEN="e2e-large-key",
        BULKAPI_MAX_ROWS_PER_JOB="1000000",
        BULKAPI_UPLOAD_URL_TTL_SECONDS=str(UPLOAD_TTL_SECONDS),
        BULKAPI_UPLOAD_GRACE_SECONDS="0",
        BULKAPI_LOCAL_SCHEDULE_SECONDS="1",
    )
    yield srv
    stop_server(srv)


def status(session: requests.Session, server: Server, job_id: str) -> dict[str, Any]:
    resp = session.get(f"{server.base_url}/api/bulk-jobs", params={"id": job_id}, timeout=30)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_a_50000_row_file_sent_through_the_presigned_form_completes_with_every_row_in_order(
    upload_server: Server,
) -> None:
    # Given an account and a 50,000-row CSV, larger than the 4 MiB a form upload through the API may carry
    account = new_account(upload_server, 100_000)
    session = upload_server.session(account.key)
    body = email_csv(50_000, bad_every=50)
    # When the client asks for an upload form and sends the file to it, as `curl -F` would
    created = session.post(
        f"{upload_server.base_url}/api/bulk-jobs", json={"type": "email", "filename": "crm-export.csv"}, timeout=30
    )
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["status"] == "awaiting_upload" and job["upload"]["method"] == "POST"
    form = job["upload"]
    sent = requests.post(form["url"], data=form["fields"], files={"file": ("crm-export.csv", body)}, timeout=120)
    assert sent.status_code == 204, sent.text
    # Then the job completes with every row counted, reserved and charged once
    final = wait_for(
        lambda: (s := status(session, upload_server, job["id"]))["status"] == "completed" and s,
        timeout=240,
        interval=0.5,
        what="the 50,000-row job to complete",
    )
    assert (final["total_rows"], final["processed"], final["succeeded"], final["invalid"]) == (
        50_000,
        50_000,
        49_000,
        1_000,
    )
    assert final["credits_reserved"] == 50_000 and final["credits_used"] == 49_000
    account.assert_balanced()
    assert account.balance == 100_000 - 49_000
    # And the result holds every input row exactly once, in input order
    resp = session.get(
        f"{upload_server.base_url}/api/bulk-jobs/download", params={"id": job["id"]}, timeout=60, allow_redirects=True
    )
    assert resp.status_code == 200, resp.text
    rows = parse_result(resp.content)
    assert [r["Row"] for r in rows] == [str(i) for i in range(50_000)]
    assert rows[49]["status"] == "invalid" and rows[50]["status"] == "ok"


def test_a_job_whose_upload_never_arrives_ends_upload_expired(upload_server: Server) -> None:
    # Given a job waiting for a file the client never sends
    account = new_account(upload_server, 1_000)
    session = upload_server.session(account.key)
    job = session.post(
        f"{upload_server.base_url}/api/bulk-jobs", json={"type": "email", "filename": "never.csv"}, timeout=30
    ).json()
    assert status(session, upload_server, job["id"])["upload_expires_at"] == job["upload"]["expires_at"]
    # Then shortly after its form expired the job ends failed, with a code saying why, and nothing charged
    final = wait_for(
        lambda: (s := status(session, upload_server, job["id"]))["status"] == "failed" and s,
        timeout=UPLOAD_TTL_SECONDS + 30,
        interval=0.5,
        what="the job to fail",
    )
    assert final["error"] == "upload_expired" and final["processed"] == 0 and final["error_message"]
    assert final["completed_at"] >= job["upload"]["expires_at"]
    assert account.balance == 1_000
    account.assert_balanced()
