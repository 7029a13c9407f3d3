"""Verdicts as customers think in them, over HTTP: the job's summary (status and webhook) adds up to its rows, and the
downloads by verdict partition the rows, each file named after its segment."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Server, new_account, post_job, status
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

# One address of each kind, repeated: valid, risky (role account, disposable), invalid, unknown (no public suffix).
KINDS = [
    ("valid", "ada.lovelace{i}@lovelace-labs.com"),
    ("risky", "info{i}@mailinator.com"),
    ("risky", "sales@acme-widgets{i}.com"),
    ("invalid", "not an address {i}"),
    ("unknown", "grace{i}@hopper.notatld"),
    ("valid", "linus{i}@kernel-dev.org"),
]
ROWS = 120  # 5 batches of 25 rows on the slow server


def leads() -> tuple[bytes, dict[str, str]]:
    """A CSV of ROWS leads with a row number, and the verdict each row should get."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["Name", "Email", "Row"])
    expected: dict[str, str] = {}
    for i in range(ROWS):
        verdict, template = KINDS[i % len(KINDS)]
        writer.writerow([f"Person {i}", template.format(i=i), str(i)])
        expected[str(i)] = verdict
    return buf.getvalue().encode(), expected


@pytest.fixture()
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook endpoint that keeps every event it is sent."""
    received: list[dict[str, Any]] = []

    class Keep(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Keep)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://localhost:{httpd.server_address[1]}/hook", received
    httpd.shutdown()
    httpd.server_close()


def download(session: requests.Session, server: Server, job_id: str, **params: str) -> requests.Response:
    """A download, asked again while its variant is being built (202)."""

    def ask() -> requests.Response | None:
        resp = session.get(f"{server.base_url}/api/bulk-jobs/download", params={"id": job_id, **params}, timeout=60)
        return None if resp.status_code == 202 else resp

    return wait_for(ask, timeout=60, interval=0.2, what=f"download {params}")


def test_summary_adds_up_and_verdict_segments_partition_the_rows(
    slow_server: Server, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    # Given an account with a webhook, and an email job of several batches with rows of every verdict
    url, received = receiver
    account = new_account(slow_server, 1_000)
    session = slow_server.session(account.key)
    assert session.post(f"{slow_server.base_url}/api/webhooks", json={"url": url}, timeout=30).status_code == 201
    body, expected = leads()
    created = post_job(session, slow_server, body, filename="leads.csv")
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    # When it completes
    job = wait_for(
        lambda: (s := status(session, slow_server, job_id))["status"] == "completed" and s["result_ready"] and s,
        timeout=120,
        what="the job to complete",
    )
    # Then its summary counts the rows by verdict, and the counts add up to total_rows
    by_verdict = {v: list(expected.values()).count(v) for v in ("valid", "risky", "invalid", "unknown")}
    assert job["summary"] == {"validity": by_verdict}
    assert sum(job["summary"]["validity"].values()) == job["total_rows"] == ROWS
    # And the webhook carries the same summary
    event = wait_for(lambda: next((e for e in received if e["data"]["id"] == job_id), None), what="the webhook")
    assert event["type"] == "bulk_job.completed" and event["data"]["summary"] == job["summary"]
    # When each segment is downloaded
    segments: dict[str, list[dict[str, str]]] = {}
    for verdict in by_verdict:
        resp = download(session, slow_server, job_id, validity=verdict)
        # Then each file is named after its segment
        assert resp.status_code == 200, resp.text
        assert resp.headers["Content-Disposition"] == f'attachment; filename="leads.enriched.{verdict}.csv"'
        segments[verdict] = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"), newline="")))
    # Then the segments partition the rows: every row in exactly one, the one its verdict says, in input order
    seen = [row["Row"] for rows in segments.values() for row in rows]
    assert sorted(seen, key=int) == [str(i) for i in range(ROWS)] and len(seen) == len(set(seen)) == ROWS
    for verdict, rows in segments.items():
        assert len(rows) == job["summary"]["validity"][verdict]
        assert {expected[row["Row"]] for row in rows} <= {verdict}
        assert [int(row["Row"]) for row in rows] == sorted(int(row["Row"]) for row in rows)
    # And two verdicts together, as JSON Lines, are those two segments' rows
    both = download(session, slow_server, job_id, validity="unknown,risky", format="jsonl")
    assert both.headers["Content-Disposition"] == 'attachment; filename="leads.enriched.risky-unknown.jsonl"'
    rows = [json.loads(line) for line in both.text.splitlines()]
    assert len(rows) == by_verdict["risky"] + by_verdict["unknown"]
    # And the status lists the segments it built
    listed = {v["name"]: v for v in status(session, slow_server, job_id)["variants"]}
    assert listed["all+valid.comma.csv"]["validity"] == ["valid"] and listed["all+valid.comma.csv"]["ready"]


def test_validity_is_refused_for_a_type_without_verdicts_and_status_valid_points_to_it(server: Server) -> None:
    session = server.session()
    created = post_job(session, server, b"phone\r\n+49 30 1234567\r\n", job_type="phone")
    job_id = created.json()["id"]
    wait_for(lambda: status(session, server, job_id)["status"] == "completed", timeout=60, what="the phone job")
    resp = session.get(f"{server.base_url}/api/bulk-jobs/download", params={"id": job_id, "validity": "valid"})
    assert resp.status_code == 400 and resp.json()["parameter"] == "validity", resp.text
    resp = session.get(f"{server.base_url}/api/bulk-jobs/download", params={"id": job_id, "status": "valid"})
    assert resp.status_code == 400 and "validity=" in resp.json()["message"], resp.text
    # And the phone job's summary counts its rows by line type and region
    summary = status(session, server, job_id)["summary"]
    assert summary == {"line_type": {"fixed_line": 1}, "region": {"DE": 1}}
