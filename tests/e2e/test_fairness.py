"""Fair and faithful results, over HTTP against `bulkapi serve`: a ledger that adds up, variants that expire with
their result, duplicates charged once, phones read in their country, and the spreadsheet guard."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from functions.logic.results import PLAIN_NUMBER
from tests.e2e.conftest import ROOT, Server, new_account, post_job, status, wait_ended
from tests.helpers import email_csv, wait_for

pytestmark = pytest.mark.e2e


def ledger_pages(session: requests.Session, server: Server, limit: int) -> tuple[int, list[dict[str, Any]], int]:
    """Every entry of the ledger, following `next_cursor`; (balance, entries, pages)."""
    entries: list[dict[str, Any]] = []
    cursor, pages, balance = None, 0, 0
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        resp = session.get(f"{server.base_url}/api/credits", params=params, timeout=30)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert len(page["entries"]) <= limit
        entries += page["entries"]
        balance, cursor, pages = page["balance"], page["next_cursor"], pages + 1
        if cursor is None:
            return balance, entries, pages


@pytest.mark.slow
def test_paging_the_ledger_after_30_jobs_gives_entries_that_sum_to_the_balance(server: Server) -> None:
    # Given an account that ran 30 jobs (a reservation and a refund each, beside its grant)
    account = new_account(server, 5_000)
    session = server.session(account.key)
    ids = []
    for n in range(30):
        created = post_job(session, server, email_csv(5 + n, bad_every=4))
        assert created.status_code == 202, created.text
        ids.append(created.json()["id"])
    for job_id in ids:
        wait_ended(session, server, job_id, timeout=180)
    wait_for(lambda: len(account.entries()) >= 1 + 2 * 30, timeout=60, what="every job's refund")
    # When the customer pages through the ledger, 7 entries at a time
    balance, entries, pages = ledger_pages(session, server, limit=7)
    # Then every entry is there once, newest first, and they add up to the balance
    assert len(entries) == len(account.entries()) == 61 and pages >= 9
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)
    assert sum(int(e["amount"]) for e in entries) == balance == account.balance
    assert {e["job_id"] for e in entries if e["job_id"]} == set(ids)
    # And a cursor that is not one is refused, not read as the first page
    bad = session.get(f"{server.base_url}/api/credits", params={"cursor": "bm90LWEta2V5"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_cursor"


def finished(session: requests.Session, server: Server, body: bytes, **kwargs: Any) -> dict[str, Any]:
    """A job created from `body` that has completed with its result."""
    created = post_job(session, server, body, **kwargs)
    assert created.status_code == 202, created.text
    return wait_for(
        lambda: (s := status(session, server, created.json()["id"]))["result_ready"] and s,
        timeout=120,
        what="the result",
    )


def fetch(session: requests.Session, server: Server, job_id: str, **params: str) -> requests.Response:
    """A download, waiting while a variant is being built (202)."""
    return wait_for(
        lambda: (
            (
                r := session.get(
                    f"{server.base_url}/api/bulk-jobs/download", params={"id": job_id, **params}, timeout=60
                )
            ).status_code
            != 202
            and r
        ),
        timeout=60,
        interval=0.2,
        what=f"the download {params}",
    )


FOUR = {"comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|"}


def formula_fields(data: bytes) -> list[str]:
    """The fields a spreadsheet would run as formulas, reading the file with each of the four delimiters."""
    found = []
    for delimiter in FOUR.values():
        for row in csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=delimiter):
            for field in row:
                text = field.lstrip(' "')
                if text[:1] in ("=", "+", "-", "@") and not PLAIN_NUMBER.fullmatch(text):
                    found.append(field)
    return found


# The delimiter-smuggled payloads of issue 21: a `;` payload in a comma file and a `,` payload in a `;` file, plus a
# pipe, a tab and a line break inside quoted cells; and the customer's own plain values the guard must leave alone.
SMUGGLED_COMMA = (
    b"email,name,phone\r\n"
    b"a@example.com,x;=cmd|' /C calc'!A0;,+49 30 1234567\r\n"
    b'b@example.com,"y|=HYPERLINK(""http://evil"")",+1 650 253 0000\r\n'
    b'c@example.com,"note\n@SUM(1+1)\tz",-12.50\r\n'
)
SMUGGLED_SEMICOLON = (
    b"email;name;phone\r\n"
    b"a@example.com;x,=cmd|' /C calc'!A0,;+49 30 1234567\r\n"
    b"b@example.com;\"x,-2+3+cmd|' /C calc'!A0\";0049 30 1234567\r\n"
)


@pytest.mark.parametrize("upload", [SMUGGLED_COMMA, SMUGGLED_SEMICOLON], ids=["comma-file", "semicolon-file"])
def test_with_the_guard_on_no_cell_is_a_formula_under_any_delimiter_and_off_gives_the_cells_as_uploaded(
    server: Server, upload: bytes
) -> None:
    # Given a finished job from a file carrying formulas smuggled behind another delimiter
    session = server.session()
    job = finished(session, server, upload)
    uploaded = list(csv.reader(io.StringIO(upload.decode(), newline=""), delimiter="," if b"email," in upload else ";"))
    # When the result is downloaded as it is, and as every delimiter variant, the guard on by default
    downloads = {"result": fetch(session, server, job["id"])}
    for name in FOUR:
        downloads[name] = fetch(session, server, job["id"], delimiter=name)
        downloads[name + "+ok"] = fetch(session, server, job["id"], delimiter=name, status="ok")
    for name, resp in downloads.items():
        assert resp.status_code == 200, (name, resp.text)
        # Then no field is a formula, whichever of the four delimiters the file is opened with
        assert formula_fields(resp.content) == [], name
    # And the customer's plain phone numbers come back untouched (they are not a row's first cell)
    result = downloads["result"].content.decode("utf-8-sig")
    assert "+49 30 1234567" in result and "'+49 30 1234567" not in result
    # When the result is downloaded with formula_guard=off, in its own and in another delimiter
    for delimiter in ("comma", "semicolon"):
        raw = fetch(session, server, job["id"], formula_guard="off", delimiter=delimiter)
        assert raw.status_code == 200, raw.text
        rows = list(csv.reader(io.StringIO(raw.content.decode("utf-8-sig"), newline=""), delimiter=FOUR[delimiter]))
        # Then every uploaded cell comes back byte for byte
        assert [r[: len(uploaded[0])] for r in rows] == uploaded
    # And JSON Lines carries no guard either
    lines = fetch(session, server, job["id"], format="jsonl").content.decode().splitlines()
    assert [json.loads(line)["name"] for line in lines] == [r[1] for r in uploaded[1:]]
    # And the status lists the unguarded variant as such
    names = {v["name"]: v["formula_guard"] for v in status(session, server, job["id"])["variants"]}
    assert names["all.comma.unguarded.csv"] is False and names["all.comma.csv"] is True


def test_an_expired_results_variants_answer_410(server: Server) -> None:
    # Given a finished job with two variants already built
    session = server.session()
    job = finished(session, server, email_csv(20, bad_every=5))
    for params in ({"format": "jsonl"}, {"status": "ok", "delimiter": "semicolon"}):
        assert fetch(session, server, job["id"], **params).status_code == 200
    # When the result itself is gone (what the bucket's retention rule does)
    client = server.aws("s3")
    account_id = job_account(server, job["id"])
    folder = f"results/{account_id}/{job['id']}/"
    assert len(client.list_objects_v2(Bucket=server.bucket, Prefix=folder).get("Contents", [])) == 2
    client.delete_object(Bucket=server.bucket, Key=f"results/{account_id}/{job['id']}.csv")
    # Then the result and every variant answer 410 result_expired, however recently they were built
    for params in ({}, {"format": "jsonl"}, {"status": "ok", "delimiter": "semicolon"}, {"status": "invalid"}):
        resp = session.get(f"{server.base_url}/api/bulk-jobs/download", params={"id": job["id"], **params}, timeout=30)
        assert resp.status_code == 410 and resp.json()["error"] == "result_expired", (params, resp.text)
    # And the status offers none of them, and the variants' files are deleted with the result
    listed = status(session, server, job["id"])
    assert listed["result_ready"] is False and not any(v["ready"] for v in listed["variants"])
    assert client.list_objects_v2(Bucket=server.bucket, Prefix=folder).get("Contents", []) == []


def job_account(server: Server, job_id: str) -> str:
    """The account a job belongs to, from the bucket's result key."""
    client = server.aws("s3")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=server.bucket, Prefix="results/").get("Contents", [])]
    return next(k.split("/")[1] for k in keys if k.endswith(f"/{job_id}.csv"))


def test_phones_are_read_in_the_jobs_country_or_the_rows_own(server: Server, tmp_path: Path) -> None:
    # Given a German customer's numbers written nationally, and an account (the deployment's default region is US)
    account = new_account(server, 1000)
    source = tmp_path / "kunden.csv"
    source.write_text("Name;Telefon\r\nAda;030 7654321\r\nBob;089 1234567\r\n", encoding="utf-8")
    out = tmp_path / "kunden.enriched.csv"
    # When the job is created from the CLI with --country DE
    command = ["jobs", "create", str(source), "--type", "phone", "--country", "DE", "--wait", "--download", str(out)]
    run = subprocess.run(
        [sys.executable, "-m", "local.cli", *command],
        cwd=ROOT,
        env={**os.environ, "BULKAPI_URL": server.base_url, "BULKAPI_KEY": account.key},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then the numbers are German, ok and charged
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8-sig"), newline=""), delimiter=";"))
    assert [(r["e164"], r["region"], r["status"]) for r in rows] == [
        ("+49307654321", "DE", "ok"),
        ("+49891234567", "DE", "ok"),
    ]
    final = json.loads(run.stdout.strip().splitlines()[-1])
    assert final["country"] == "DE" and final["credits_used"] == 2
    # Given the same numbers with a per-row `Land` column instead (one row says France, one names no country)
    session = server.session(account.key)
    body = "Name,Telefon,Land\r\nAda,030 7654321,Deutschland\r\nCleo,01 23 45 67 89,France\r\nDan,030 7654321,\r\n"
    # When the preview and the job read them without a job country
    preview = session.post(
        f"{server.base_url}/api/bulk-jobs/preview",
        files={"file": ("mixed.csv", body.encode(), "text/csv")},
        data={"type": "phone"},
        timeout=60,
    )
    assert preview.status_code == 200, preview.text
    assert [r["enrichment"]["e164"] for r in preview.json()["rows"]] == ["+49307654321", "+33123456789", None]
    job = finished(session, server, body.encode(), job_type="phone")
    result = list(csv.DictReader(io.StringIO(fetch(session, server, job["id"]).content.decode("utf-8-sig"))))
    # Then each row is read in its own country, and a row without one in the deployment's default (US): not a valid
    # US number, so invalid and free
    assert [(r["e164"], r["status"]) for r in result] == [
        ("+49307654321", "ok"),
        ("+33123456789", "ok"),
        ("", "invalid"),
    ]
    assert result[2]["error"] == "invalid_phone" and result[2]["reason"] == "not_valid_in_US"
    assert job["credits_used"] == 2
    # And a country that is not a region, or on a job of another type, is refused
    for data in ({"type": "phone", "country": "XX"}, {"type": "email", "country": "DE"}):
        refused = session.post(
            f"{server.base_url}/api/bulk-jobs", files={"file": ("a.csv", body.encode(), "text/csv")}, data=data
        )
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_parameter", refused.text


ENRICHMENT = ("normalized", "domain", "validity", "reason", "first_name", "last_name", "status", "error")


def test_a_value_repeated_across_batches_is_charged_once_and_every_row_comes_back(slow_server: Server) -> None:
    # Given 100 rows in batches of 25: 65 distinct addresses, 5 invalid values and 30 repeats of earlier addresses
    # (written in other cases or with a display name), spread over every batch
    account = new_account(slow_server, 1000)
    session = slow_server.session(account.key)
    distinct = [f"person{i}@example{i % 3}.com" for i in range(65)]
    rows = [*distinct, *(f"broken-{i}" for i in range(5))]
    for n in range(30):
        first = distinct[(n * 7) % 65]
        repeat = first.upper() if n % 3 == 0 else (f"Person {n} <{first}>" if n % 3 == 1 else first)
        rows.insert(5 + n * 3, repeat)
    assert len(rows) == 100
    body = ("Email\r\n" + "\r\n".join(f'"{r}"' for r in rows) + "\r\n").encode()
    # When the job runs
    job = finished(session, slow_server, body)
    # Then only the distinct valid addresses are charged, in the status and in the ledger
    assert (job["credits_used"], job["duplicates"], job["succeeded"], job["invalid"]) == (65, 30, 95, 5)

    def charged() -> int:
        """What the job's ledger entries (its reservation and refund) take from the balance."""
        return -sum(int(e["amount"]) for e in account.entries() if e["job_id"] == job["id"])

    assert wait_for(lambda: charged() == 65 and charged(), timeout=60, what="the refund") == len(distinct)
    account.assert_balanced()
    # And every row comes back in input order; a repeat carries the row of its first occurrence and that row's
    # status and enrichment
    result = list(csv.DictReader(io.StringIO(fetch(session, slow_server, job["id"]).content.decode("utf-8-sig"))))
    assert [r["Email"] for r in result] == rows
    repeats = [(i, r) for i, r in enumerate(result) if r["duplicate_of"]]
    assert len(repeats) == 30
    for index, row in repeats:
        first = result[int(row["duplicate_of"]) - 1]
        assert int(row["duplicate_of"]) - 1 < index and not first["duplicate_of"]
        assert first["normalized"] == row["Email"].split("<")[-1].rstrip(">").lower()
        assert [row[c] for c in ENRICHMENT] == [first[c] for c in ENRICHMENT]
    # And the webhook payload's source, the status, says how many rows were repeats
    assert status(session, slow_server, job["id"])["duplicates"] == 30


def cli(server: Server, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`bulkapi ...` as a script runs it (stdin and stdout are not terminals)."""
    return subprocess.run(
        [sys.executable, "-m", "local.cli", *args],
        cwd=ROOT,
        env={**os.environ, "BULKAPI_URL": server.base_url, "BULKAPI_KEY": key},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_cli_cancel_never_deletes_and_delete_needs_yes_without_a_terminal(server: Server) -> None:
    # Given a completed job
    account = new_account(server, 100)
    session = server.session(account.key)
    job = finished(session, server, email_csv(10))
    # When it is cancelled from the CLI
    cancel = cli(server, account.key, "jobs", "cancel", job["id"])
    # Then the CLI reports job_finished (exit 2) and the job and its result are still there
    assert cancel.returncode == 2 and "job_finished" in cancel.stderr, cancel.stderr
    assert fetch(session, server, job["id"]).status_code == 200
    # When it is deleted from a script without --yes
    refused = cli(server, account.key, "jobs", "delete", job["id"])
    # Then nothing is deleted: a script must say --yes
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert status(session, server, job["id"])["status"] == "completed"
    # When it is deleted with --yes (once its credits are settled)
    deleted = wait_for(
        lambda: (r := cli(server, account.key, "jobs", "delete", job["id"], "--yes")).returncode == 0 and r,
        timeout=60,
        what="the purge",
    )
    # Then the job is gone
    assert json.loads(deleted.stdout) == {"id": job["id"], "status": "deleted"}
    assert session.get(f"{server.base_url}/api/bulk-jobs", params={"id": job["id"]}, timeout=30).status_code == 404
