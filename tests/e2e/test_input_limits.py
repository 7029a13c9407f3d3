"""Files at the edges of the limits, over HTTP: valid ones complete, the others get a clear 400 at once."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Server
from tests.e2e.test_jobs_http import post_job, status
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
    final = wait_for(
        lambda: (s := status(session, server, created.json()["id"]))["status"] in ("completed", "failed") and s,
        timeout=180,
        interval=0.5,
        what="the job to end",
    )
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
    final = wait_for(
        lambda: (s := status(session, server, created.json()["id"]))["status"] in ("completed", "failed") and s,
        timeout=60,
        interval=0.2,
        what="the job to end",
    )
    assert (final["status"], final["processed"]) == ("completed", 2)
    assert time.monotonic() - started < 20
    resp = session.get(f"{server.base_url}/api/bulk-jobs/download", params={"id": final["id"]}, timeout=60)
    rows = parse_result(resp.content)
    assert len(rows) == 2 and len(rows[0]) > 1000
