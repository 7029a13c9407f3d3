"""Files at the edges of the limits, over HTTP: valid ones complete, the others get a clear 400 at once."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Server, post_job, status, wait_ended
from tests.helpers import parse_result, wait_for

pytestmark = pytest.mark.e2e


def test_three_megabyte_file_of_wide_rows_completes(server: Server) -> None:
    # Given 10,000 rows of about 300 bytes (`email,note`): 3 MB, too much for one SendMessageBatch of 1 MiB
    note = ("lorem ipsum dolor sit amet " * 11)[:280]
    body = ("email,note\n" + "".join(f"user{i}@example.com,{note}\n" for i in range(10_000))).encode()
    assert len(body) > 3_000_000
    session = server.session()

    # When it is posted
    created = post_job(session, server, body)
    assert created.status_code == 202, created.text

    # Then it completes with every row counted
    final = wait_ended(session, server, created.json()["id"], timeout=180, interval=0.5)
    assert (final["status"], final["processed"], final["succeeded"], final["failed"]) == (
        "completed",
        10_000,
        10_000,
        0,
    )
    # And the download has every row once, in order, the note unchanged
    resp = session.get(f"{server.base_url}/api/bulk-jobs/download", params={"id": final["id"]}, timeout=60)
    rows = parse_result(resp.content)
    assert [r["email"] for r in rows] == [f"user{i}@example.com" for i in range(10_000)]
    assert rows[-1]["note"] == note


@pytest.mark.parametrize("columns", [30_000, 60_001])
def test_wide_headerless_file_is_refused_at_once_with_the_column_limit(server: Server, columns: int) -> None:
    # Given an address followed by thousands of empty cells, on two lines (the 2 x 30,000 and 120 KB files)
    body = (b"a@example.com" + b"," * (columns - 1) + b"\n") * 2
    started = time.monotonic()

    # When it is posted
    resp = post_job(server.session(), server, body)

    # Then it is refused up front with the documented code and limit (it was accepted, then stuck or 41 s)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "too_many_columns" and resp.json()["max_columns"] == 1000
    assert time.monotonic() - started < 5


def test_widest_allowed_file_completes_quickly(server: Server) -> None:
    # Given two rows of exactly the column limit, without a header
    body = (b"a@example.com" + b",x" * 999 + b"\n") * 2
    session = server.session()
    started = time.monotonic()

    # When it is posted
    created = post_job(session, server, body)
    assert created.status_code == 202, created.text

    # Then it completes in seconds, not tens of seconds, with every column kept
    final = wait_ended(session, server, created.json()["id"], timeout=60, interval=0.2)
    assert (final["status"], final["processed"]) == ("completed", 2)
    assert time.monotonic() - started < 20
    resp = session.get(f"{server.base_url}/api/bulk-jobs/download", params={"id": final["id"]}, timeout=60)
    rows = parse_result(resp.content)
    assert len(rows) == 2 and len(rows[0]) > 1000


def test_unclosed_quote_on_row_one_is_refused_not_a_silent_loss(server: Server) -> None:
    # Given the file: 5,001 rows, a quote on row 1 that never closes
    body = b'email,note\na@example.com,"oops\n' + b"".join(b"user%d@example.com,fine\n" % i for i in range(5_000))

    # When it is posted
    resp = post_job(server.session(), server, body)

    # Then it is refused as malformed (it was 202 with total_rows 1 and 5,000 addresses lost)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "malformed_csv" and "quote" in resp.json()["message"]


def test_quote_open_at_the_end_of_a_small_file_is_refused(server: Server) -> None:
    # Given a short file whose quote on row 2 never closes
    body = b'email,note\na@example.com,fine\nb@example.com,"oops\nc@example.com,x\n'

    # When it is posted
    resp = post_job(server.session(), server, body)

    # Then it is refused with the line where the quote opened
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "malformed_csv" and resp.json()["line"] == 3


def test_two_file_parts_are_refused(server: Server) -> None:
    # Given a form with two `file` parts
    files = [
        ("file", ("a.csv", b"email\na@example.com\n", "text/csv")),
        ("file", ("b.csv", b"email\nb@example.com\nc@example.com\n", "text/csv")),
    ]

    # When it is posted
    resp = server.session().post(f"{server.base_url}/api/bulk-jobs", files=files, data={"type": "email"}, timeout=30)

    # Then neither is used silently: 400 naming the field
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "duplicate_field" and resp.json()["field"] == "file"


def test_chunked_upload_creates_the_job(server: Server) -> None:
    # Given a multipart body sent with Transfer-Encoding: chunked (no Content-Length), as streaming clients do
    boundary = "bulkapi-chunked-test"
    csv_body = b"email\n" + b"".join(b"user%d@example.com\n" % i for i in range(2_000))
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="type"\r\n\r\nemail\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="leads.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + csv_body
        + f"\r\n--{boundary}--\r\n".encode()
    )

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    # When it is posted
    session = server.session()
    resp = session.post(
        f"{server.base_url}/api/bulk-jobs",
        data=pieces(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=30,
    )

    # Then the job is created from the whole file and completes
    assert resp.status_code == 202, resp.text
    assert resp.json()["total_rows"] == 2_000
    final = wait_for(
        lambda: (s := status(session, server, resp.json()["id"]))["status"] == "completed" and s,
        timeout=60,
        what="the job to complete",
    )
    assert final["processed"] == 2_000
