"""The customer commands (`bulkapi jobs|lookup|search|credits|webhooks`) against `bulkapi serve`, as a script runs
them: JSON lines on stdout, log lines on stderr, an exit code per class of error."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, Server, free_port, new_account
from tests.helpers import email_csv, parse_result

pytestmark = pytest.mark.e2e


def bulkapi(
    server: Server, key: str, *args: str, stdin: str | None = None, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BULKAPI_URL": url or server.base_url, "BULKAPI_KEY": key}
    return subprocess.run(
        [sys.executable, "-m", "local.cli", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_create_waits_with_progress_then_downloads_every_row(server: Server, tmp_path: Path) -> None:
    # Given a 500-row CSV with some invalid addresses and an account
    account = new_account(server, 1000)
    source = tmp_path / "leads.csv"
    source.write_bytes(email_csv(500, bad_every=50))
    out = tmp_path / "leads.enriched.csv"
    # When the job is created with --wait --download (stdout is not a terminal: log lines, then the final status)
    run = bulkapi(
        server, account.key, "jobs", "create", str(source), "--type", "email", "--wait", "--download", str(out)
    )
    # Then it ends completed, the progress was logged, and the file has every row in order
    assert run.returncode == 0, run.stderr
    final = json.loads(run.stdout.strip().splitlines()[-1])
    assert final["status"] == "completed" and final["processed"] == 500
    assert "created" in run.stderr and "completed: 500/500 rows" in run.stderr and "downloaded" in run.stderr
    rows = parse_result(out.read_bytes())
    sent = list(csv.DictReader(io.StringIO(source.read_text(), newline="")))
    assert [r["Email"] for r in rows] == [r["Email"] for r in sent]
    assert sum(r["status"] == "ok" for r in rows) == final["credits_used"] == 1000 - account.balance
    # And the final status carries the summary, whose invalid segment downloads with --validity
    assert final["summary"]["validity"]["invalid"] == 10 and sum(final["summary"]["validity"].values()) == 500
    segment = tmp_path / "invalid.csv"
    run = bulkapi(server, account.key, "jobs", "download", final["id"], "--validity", "invalid", "--out", str(segment))
    assert run.returncode == 0, run.stderr
    assert [r["Email"] for r in parse_result(segment.read_bytes())] == [
        r["Email"] for r in rows if r["validity"] == "invalid"
    ]


def test_lookup_reads_stdin_and_streams_one_json_line_per_input(server: Server) -> None:
    # Given addresses on stdin, one of them malformed
    account = new_account(server, 100)
    run = bulkapi(server, account.key, "lookup", "-", stdin="ada.lovelace@example.com\nnope\ngrace@navy.mil\n")
    # Then each input is one JSON line, in order, results and errors alike
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(line["event"], line["email"]) for line in lines] == [
        ("result", "ada.lovelace@example.com"),
        ("error", "nope"),
        ("result", "grace@navy.mil"),
    ]
    assert account.balance == 98


def test_search_takes_arguments(server: Server) -> None:
    account = new_account(server, 100)
    run = bulkapi(server, account.key, "search", "ip", "8.8.8.8", "1.1.1.1")
    assert run.returncode == 0, run.stderr
    assert [json.loads(line)["query"] for line in run.stdout.splitlines()] == ["8.8.8.8", "1.1.1.1"]


@pytest.mark.parametrize(
    ("case", "code", "error"),
    [
        ("bad_key", 3, "unauthorized"),
        ("no_credits", 4, "insufficient_credits"),
        ("bad_file", 2, "empty_file"),
        ("unknown_job", 2, "job_not_found"),
        ("no_server", 5, "connection_failed"),
    ],
)
def test_errors_print_the_api_code_and_exit_by_class(
    server: Server, tmp_path: Path, case: str, code: int, error: str
) -> None:
    # Given an account with 1 credit, an empty file and a port where nothing listens
    account = new_account(server, 1)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    runs = {
        "bad_key": lambda: bulkapi(server, "enc_test_wrong", "credits"),
        "no_credits": lambda: bulkapi(server, account.key, "lookup", "a.b@example.com", "c.d@example.com"),
        "bad_file": lambda: bulkapi(server, account.key, "jobs", "create", str(empty), "--type", "email"),
        "unknown_job": lambda: bulkapi(server, account.key, "jobs", "status", "job_nope"),
        "no_server": lambda: bulkapi(server, account.key, "credits", url=f"http://127.0.0.1:{free_port()}"),
    }
    # When the command fails
    run = runs[case]()
    # Then stderr names the API's code and message, stdout stays empty, and the exit code says the class
    assert run.returncode == code, (run.stdout, run.stderr)
    assert f"error {error}:" in run.stderr and run.stdout == ""


def test_a_file_over_the_form_limit_goes_through_the_presigned_upload(server: Server, tmp_path: Path) -> None:
    # Given a CSV just over the 4 MiB a form may carry
    account = new_account(server, 200_000)
    source = tmp_path / "big.csv"
    source.write_bytes(email_csv(100_000))
    assert source.stat().st_size > 4 * 1024 * 1024
    out = tmp_path / "big.enriched.csv"
    # When the CLI creates the job and waits for it
    run = bulkapi(
        server, account.key, "jobs", "create", str(source), "--type", "email", "--wait", "--download", str(out)
    )
    # Then the file went straight to storage (the job waited for its upload first), and every row came back
    assert run.returncode == 0, run.stderr[-2000:]
    final = json.loads(run.stdout.strip().splitlines()[-1])
    assert final["status"] == "completed" and final["total_rows"] == 100_000 == final["processed"]
    assert "awaiting_upload" in run.stderr or "created (? rows)" in run.stderr
    assert len(parse_result(out.read_bytes())) == 100_000
