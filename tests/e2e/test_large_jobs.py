"""Large lists over HTTP against `bulkapi serve`: files sent straight to S3 through a presigned form, uploads that
never come, and files the service fetches from a URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.e2e.conftest import Server, new_account, start_server, status, stop_server, wait_ended
from tests.helpers import email_csv, parse_result, wait_for

pytestmark = pytest.mark.e2e

# Short-lived upload forms, swept every second, so an upload that never comes ends within seconds.
UPLOAD_TTL_SECONDS = 8
MAX_ROWS = 60_000


@pytest.fixture(scope="module")
def upload_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("large"),
        BULKAPI_DEV_TOKEN="e2e-large-key",
        # The deployed default is 1,000,000; a lower limit keeps the too-many-rows test small.
        BULKAPI_MAX_ROWS_PER_JOB=str(MAX_ROWS),
        BULKAPI_UPLOAD_URL_TTL_SECONDS=str(UPLOAD_TTL_SECONDS),
        BULKAPI_UPLOAD_GRACE_SECONDS="0",
        BULKAPI_LOCAL_SCHEDULE_SECONDS="1",
    )
    yield srv
    stop_server(srv)


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


def test_an_uploaded_file_over_the_row_limit_ends_failed_before_any_work_or_charge(upload_server: Server) -> None:
    account = new_account(upload_server, 100_000)
    session = upload_server.session(account.key)
    job = session.post(
        f"{upload_server.base_url}/api/bulk-jobs", json={"type": "email", "filename": "too-big.csv"}, timeout=30
    ).json()
    form = job["upload"]
    body = email_csv(MAX_ROWS + 1)
    assert requests.post(form["url"], data=form["fields"], files={"file": ("x.csv", body)}, timeout=60).ok
    final = wait_for(
        lambda: (s := status(session, upload_server, job["id"]))["status"] == "failed" and s,
        timeout=60,
        interval=0.5,
        what="the job to fail",
    )
    assert (final["error"], final["processed"], final["credits_reserved"]) == ("too_many_rows", 0, 0)
    assert final["split_bytes_total"] == len(body)
    assert account.balance == 100_000


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


@pytest.fixture(scope="module")
def csv_origin() -> Iterator[str]:
    """A plain HTTP server on loopback serving one CSV, as a customer's file server would."""
    body = email_csv(2_000, bad_every=20)

    class Files(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            if self.path != "/exports/leads.csv":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_job_from_a_url_on_a_loopback_server_is_fetched_and_completes(upload_server: Server, csv_origin: str) -> None:
    # Given a CSV served over http on this machine (allowed locally, as for webhooks)
    account = new_account(upload_server, 10_000)
    session = upload_server.session(account.key)
    # When a job is created from its URL
    created = session.post(
        f"{upload_server.base_url}/api/bulk-jobs",
        json={"type": "email", "url": f"{csv_origin}/exports/leads.csv"},
        timeout=30,
    )
    assert created.status_code == 202, created.text
    job = created.json()
    assert job["status"] == "queued" and job.get("upload") is None
    # Then the service fetches it, counts and reserves its rows, and completes it
    final = wait_ended(session, upload_server, job["id"], timeout=120, interval=0.5)
    assert final["status"] == "completed", final
    assert (final["filename"], final["total_rows"], final["succeeded"], final["invalid"]) == (
        "leads.csv",
        2_000,
        1_900,
        100,
    )
    rows = parse_result(
        session.get(f"{upload_server.base_url}/api/bulk-jobs/download", params={"id": job["id"]}, timeout=60).content
    )
    assert [r["Row"] for r in rows] == [str(i) for i in range(2_000)]
    account.assert_balanced()
    assert account.balance == 10_000 - 1_900


@pytest.fixture(scope="module")
def deployed_rules_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`bulkapi serve` with the deployed target rules: https to public addresses only."""
    srv = start_server(tmp_path_factory.mktemp("deployed-rules"), BULKAPI_ALLOW_PRIVATE_TARGETS="false")
    yield srv
    stop_server(srv)


def test_a_url_to_a_refused_address_ends_fetch_blocked_under_the_deployed_rules(
    deployed_rules_server: Server, csv_origin: str
) -> None:
    server = deployed_rules_server
    session = server.session()
    port = csv_origin.rsplit(":", 1)[1]
    # Given the deployed rules, a plain-http URL is refused at once, before a job exists
    refused = session.post(
        f"{server.base_url}/api/bulk-jobs", json={"type": "email", "url": f"{csv_origin}/exports/leads.csv"}, timeout=30
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_parameter", refused.text
    assert refused.json()["parameter"] == "url"
    # When an https URL names this machine (a name that resolves to loopback) or the cloud metadata address
    for url in (f"https://localhost:{port}/exports/leads.csv", "https://169.254.169.254/latest/meta-data/"):
        created = session.post(f"{server.base_url}/api/bulk-jobs", json={"type": "email", "url": url}, timeout=30)
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        # Then the fetch is refused and the job ends failed with fetch_blocked, nothing charged
        final = wait_for(
            lambda job_id=job_id: (s := status(session, server, job_id))["status"] != "queued" and s,
            timeout=60,
            interval=0.5,
            what="the fetch to be refused",
        )
        assert (final["status"], final["error"], final["processed"]) == ("failed", "fetch_blocked", 0), final
        assert final["credits_reserved"] == 0
        # And no result is offered (it said result_ready: true while the download answered 409 job_failed)
        assert (final["result_ready"], final["result_expires_at"]) == (False, None), final
        download = session.get(f"{server.base_url}/api/bulk-jobs/download", params={"id": job_id}, timeout=30)
        assert download.status_code == 409 and download.json()["error"] == "job_failed", download.text
