"""Files as customers have them, over HTTP against `bulkapi serve`: workbooks, gzip and ZIP files complete as their
CSV does; a ZIP bomb is refused at once; a result downloads as a workbook whose text cells stay text."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import requests
import xlsxwriter

from tests.e2e.conftest import ROOT, Server, new_account, post_job, status
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


def leads(n: int) -> list[list[str]]:
    """Rows whose text a spreadsheet would mangle if it were read as numbers: a + phone, a zip with leading zeros."""
    rows = [["Email", "Name", "Phone", "Zip", "Count"]]
    for i in range(n):
        email = f"user{i}@example.com" if i % 50 else f"not-an-email-{i}"
        rows.append([email, f"Person {i}", "+49 30 1234567", "00123", str(i)])
    return rows


def as_csv(rows: list[list[str]]) -> bytes:
    return "".join(",".join(row) + "\r\n" for row in rows).encode()


def as_xlsx(rows: list[list[str]], path: Path) -> bytes:
    # As Excel keeps such a list: text cells, and the count as a number (read back as "7", not "7.0")
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet("Leads")
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            if r and c == 4:
                sheet.write_number(r, c, int(cell))
            else:
                sheet.write_string(r, c, cell)
    book.close()
    return path.read_bytes()


def as_zip(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def presigned_job(session: requests.Session, server: Server, body: bytes, filename: str) -> str:
    created = session.post(
        f"{server.base_url}/api/bulk-jobs", json={"type": "email", "filename": filename}, timeout=30
    ).json()
    form = created["upload"]
    sent = requests.post(form["url"], data=form["fields"], files={"file": (filename, body)}, timeout=120)
    assert sent.status_code == 204, sent.text
    return str(created["id"])


def completed(session: requests.Session, server: Server, job_id: str, timeout: float = 400) -> dict[str, Any]:
    final = wait_for(
        lambda: (s := status(session, server, job_id))["status"] in ("completed", "failed") and s,
        timeout=timeout,
        interval=0.5,
        what=f"job {job_id} to end",
    )
    assert final["status"] == "completed", final
    return dict(final)


def result(session: requests.Session, server: Server, job_id: str) -> bytes:
    resp = session.get(f"{server.base_url}/api/bulk-jobs/download", params={"id": job_id}, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.content


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_100000_row_workbook_completes_with_the_same_result_as_the_csv(server: Server, tmp_path: Path) -> None:
    # Given 100,000 leads as a CSV (over the form's 4 MiB: sent through the presigned form) and as a workbook
    account = new_account(server, 300_000)
    session = server.session(account.key)
    rows = leads(100_000)
    book = as_xlsx(rows, tmp_path / "leads.xlsx")
    assert len(book) < 4 * 1024 * 1024
    # When both become jobs, the workbook through the API's form
    csv_job = presigned_job(session, server, as_csv(rows), "leads.csv")
    created = post_job(session, server, book, filename="leads.xlsx")
    assert created.status_code == 202, created.text
    # Then both complete with every row, and the same result
    expected = completed(session, server, csv_job)
    final = completed(session, server, created.json()["id"])
    assert final["total_rows"] == expected["total_rows"] == 100_000
    assert (final["succeeded"], final["invalid"]) == (expected["succeeded"], expected["invalid"]) == (98_000, 2_000)
    from_book = result(session, server, created.json()["id"])
    assert from_book == result(session, server, csv_job)
    assert b"user1@example.com,Person 1,+49 30 1234567,00123,1," in from_book  # a phone is not guarded
    account.assert_balanced()


def test_a_gzip_and_a_zip_complete_with_the_same_result_as_the_csv(server: Server) -> None:
    # Given one list as a CSV, a .csv.gz and a .zip, each sent through the form
    account = new_account(server, 100_000)
    session = server.session(account.key)
    data = as_csv(leads(20_000))
    jobs = {}
    for name, body in (
        ("leads.csv", data),
        ("leads.csv.gz", gzip.compress(data)),
        ("leads.zip", as_zip("l.csv", data)),
    ):
        resp = post_job(session, server, body, filename=name)
        assert resp.status_code == 202, resp.text
        jobs[name] = resp.json()["id"]
    # Then each completes with the same result
    results = {
        name: (completed(session, server, job)["total_rows"], result(session, server, job))
        for name, job in jobs.items()
    }
    assert results["leads.csv.gz"] == results["leads.csv"] == results["leads.zip"]
    assert results["leads.csv"][0] == 20_000
    account.assert_balanced()


def test_the_type_is_read_from_the_content_not_the_name(server: Server) -> None:
    # A gzip file named .csv is read as gzip
    session = server.session()
    resp = post_job(session, server, gzip.compress(as_csv(leads(10))), filename="plain.csv")
    assert resp.status_code == 202, resp.text
    assert completed(session, server, resp.json()["id"], timeout=60)["total_rows"] == 10


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """A ZIP of under 1 KB whose one file inflates to 1 GiB + 1 MiB of zeros (honestly: bzip2 does that)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_BZIP2) as archive, archive.open("leads.csv", "w") as member:
        block = b"\0" * (16 * 1024 * 1024)
        for _ in range(64):
            member.write(block)
        member.write(b"\0" * (1024 * 1024))
    return buffer.getvalue()


@pytest.mark.slow
def test_a_zip_bomb_is_refused_at_once_with_the_limit(server: Server, zip_bomb: bytes) -> None:
    assert len(zip_bomb) < 1024
    assert zipfile.ZipFile(io.BytesIO(zip_bomb)).infolist()[0].file_size > 1024**3
    # When it is sent as a job, or previewed
    for path in ("/api/bulk-jobs", "/api/bulk-jobs/preview"):
        started = time.monotonic()
        resp = server.session().post(
            f"{server.base_url}{path}", files={"file": ("leads.zip", zip_bomb)}, data={"type": "email"}, timeout=30
        )
        # Then it is refused at once, with the limit, as too large
        assert time.monotonic() - started < 5
        assert resp.status_code == 413, resp.text
        assert resp.json()["error"] == "file_too_large" and resp.json()["max_bytes"] == 1024**3


def test_a_zip_of_several_files_names_them(server: Server) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("january.csv", b"email\r\na@example.com\r\n")
        archive.writestr("february.csv", b"email\r\nb@example.com\r\n")
    resp = post_job(server.session(), server, buffer.getvalue(), filename="months.zip")
    assert resp.status_code == 400
    body = resp.json()
    assert body["error"] == "archive_has_several_files" and body["files"] == ["january.csv", "february.csv"]
    assert "january.csv" in body["message"]


def test_a_result_downloads_as_a_workbook_with_text_kept_as_text(server: Server) -> None:
    # Given a completed job whose cells look like numbers and formulas
    session = server.session()
    body = b"Email,Phone,Zip,Note\r\na@example.com,+49 30 1234567,00123,=1+1\r\nb@example.com,0049 30 7,007,x\r\n"
    job_id = post_job(session, server, body).json()["id"]
    completed(session, server, job_id, timeout=60)
    # When it is downloaded with format=xlsx (built on first ask: 202, then a link)
    url = f"{server.base_url}/api/bulk-jobs/download"

    def ready() -> requests.Response | None:
        resp = session.get(url, params={"id": job_id, "format": "xlsx"}, timeout=30)
        return None if resp.status_code == 202 else resp

    resp = wait_for(ready, timeout=60, what="the workbook to be built")
    assert resp.status_code == 200, resp.text
    assert resp.history and resp.history[0].status_code == 303
    # Then it opens with a reader, and the text cells are text
    book = openpyxl.load_workbook(io.BytesIO(resp.content))
    sheet = book.worksheets[0]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[0][:4] == ["Email", "Phone", "Zip", "Note"]
    assert rows[1][:4] == ["a@example.com", "+49 30 1234567", "00123", "=1+1"]
    assert rows[2][1:3] == ["0049 30 7", "007"]
    assert sheet["B2"].data_type == "s" and sheet["C2"].data_type == "s" and sheet.freeze_panes == "A2"


def test_the_cli_previews_a_7_mb_file_from_its_head_and_starts_it_through_the_presigned_form(
    server: Server, tmp_path: Path
) -> None:
    # Given a 7 MB CSV of 200,000 rows, over the 4 MiB a form carries
    account = new_account(server, 300_000)
    big = tmp_path / "big.csv"
    big.write_bytes(
        b"email,name\r\n" + b"".join(b"user%06d@example.com,Person %06d\r\n" % (i, i) for i in range(200_000))
    )
    assert big.stat().st_size > 7_000_000
    env = {**os.environ, "BULKAPI_URL": server.base_url, "BULKAPI_KEY": account.key}

    def cli(*args: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "local.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout.splitlines()[0]))

    # When it is previewed: from its head, said so, with the whole file's rows estimated
    answer = cli("jobs", "preview", str(big), "--type", "email")
    assert answer["truncated"] is True and answer["detected"]["column"] == "email"
    assert 0 < answer["total_rows"] < 200_000 and abs(answer["estimated_total_rows"] - 200_000) < 2_000
    assert answer["rows"][0]["value"] == "user000000@example.com"
    # And created: the whole file goes through the presigned form, and the job counts every row
    job = cli("jobs", "create", str(big), "--type", "email")
    try:
        counted = wait_for(
            lambda: (s := status(server.session(account.key), server, job["id"]))["total_rows"] and s,
            timeout=120,
            what="the job's rows to be counted",
        )
        assert counted["total_rows"] == 200_000 and counted["status"] in ("processing", "completed")
    finally:
        # Its 200,000 rows would keep the shared server's workers busy for the tests after this one
        server.session(account.key).delete(f"{server.base_url}/api/bulk-jobs", params={"id": job["id"]}, timeout=30)


def test_a_workbook_dropped_into_the_bucket_becomes_a_job_of_its_named_sheet(server: Server, tmp_path: Path) -> None:
    # Given a workbook whose leads are on its second sheet, dropped into the bucket with x-amz-meta-sheet
    account = new_account(server, 1_000)
    path = tmp_path / "book.xlsx"
    book = xlsxwriter.Workbook(str(path))
    book.add_worksheet("Notes").write_string(0, 0, "nothing here")
    leads_sheet = book.add_worksheet("Leads")
    for r, row in enumerate(leads(30)):
        leads_sheet.write_row(r, 0, row)
    book.close()
    s3 = server.aws("s3")
    s3.put_object(
        Bucket=server.bucket,
        Key=f"drop/{account.id}/email/crm.xlsx",
        Body=path.read_bytes(),
        Metadata={"sheet": "Leads"},
    )
    # Then it becomes a job of that account, which reads that sheet's rows
    session = server.session(account.key)
    listed = wait_for(
        lambda: session.get(f"{server.base_url}/api/bulk-jobs", timeout=30).json()["jobs"] or None,
        timeout=60,
        what="the dropped file's job",
    )
    final = completed(session, server, listed[0]["id"], timeout=120)
    assert final["filename"] == "crm.xlsx" and final["total_rows"] == 30 and final["invalid"] == 1


def test_a_zipped_workbook_at_a_url_is_fetched_and_completes(server: Server, tmp_path: Path) -> None:
    # Given a ZIP holding a workbook, served over http on this machine (allowed locally, as for webhooks)
    body = as_zip("leads.xlsx", as_xlsx(leads(500), tmp_path / "leads.xlsx"))

    class Files(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    origin = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    try:
        # When a job is created from its URL
        account = new_account(server, 1_000)
        session = server.session(account.key)
        url = f"http://127.0.0.1:{origin.server_address[1]}/exports/leads.zip"
        created = session.post(f"{server.base_url}/api/bulk-jobs", json={"type": "email", "url": url}, timeout=30)
        assert created.status_code == 202, created.text
        # Then it is fetched, read as the workbook inside, and completes with every row
        final = completed(session, server, created.json()["id"], timeout=120)
    finally:
        origin.shutdown()
    assert (final["filename"], final["total_rows"], final["invalid"]) == ("leads.zip", 500, 10)
    assert b",Person 7,+49 30 1234567,00123,7," in result(session, server, created.json()["id"])
