"""What a user does with a finished job over HTTP: expiry, delete, download variants, preview, legacy encodings."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Server, new_account, post_job, status
from tests.helpers import email_csv, wait_for

pytestmark = pytest.mark.e2e


def s3(server: Server) -> Any:
    return server.aws("s3")


def finished_job(session: requests.Session, server: Server, body: bytes, **kwargs: str) -> dict[str, Any]:
    created = post_job(session, server, body, **kwargs)
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    return wait_for(
        lambda: (s := status(session, server, job_id))["result_ready"] and s["status"] == "completed" and s,
        timeout=120,
        what="the job to complete with its result",
    )


def download(session: requests.Session, server: Server, job_id: str, **params: str) -> requests.Response:
    return session.get(
        f"{server.base_url}/api/bulk-jobs/download", params={"id": job_id, **params}, timeout=60, allow_redirects=False
    )


def test_a_result_that_is_gone_answers_410_and_the_status_says_not_ready(server: Server) -> None:
    # Given a completed job whose result file the bucket no longer has (what the retention rule does)
    session = server.session()
    job = finished_job(session, server, email_csv(20))
    assert job["result_expires_at"] > job["completed_at"]
    client = s3(server)
    for obj in client.list_objects_v2(Bucket=server.bucket, Prefix="results/").get("Contents", []):
        if job["id"] in obj["Key"]:
            client.delete_object(Bucket=server.bucket, Key=obj["Key"])
    # When the user downloads it
    resp = download(session, server, job["id"])
    # Then the answer is 410 result_expired, which no client retries (never a 503)
    assert resp.status_code == 410, resp.text
    assert resp.json()["error"] == "result_expired" and resp.json()["message"]
    # And the status no longer offers the result
    assert status(session, server, job["id"])["result_ready"] is False


def purge_until_gone(session: requests.Session, server: Server, job_id: str) -> dict[str, Any]:
    """A purge answers 409 job_not_finished while the job's finalizer settles it, then purges it."""

    def attempt() -> dict[str, Any] | None:
        resp = session.delete(f"{server.base_url}/api/bulk-jobs", params={"id": job_id, "purge": "true"}, timeout=30)
        if resp.status_code == 409:
            assert resp.json()["error"] == "job_not_finished", resp.text
            return None
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    return wait_for(attempt, timeout=60, what="the purge")


def job_objects(server: Server, job_id: str) -> list[str]:
    """Every version and delete marker in the bucket whose key names the job."""
    client, found = s3(server), []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=server.bucket):
        for version in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            if job_id in version["Key"]:
                found.append(version["Key"])
    return found


def test_a_cancel_that_crosses_the_end_keeps_the_result_and_only_a_purge_deletes_it(server: Server) -> None:
    # Given a completed job (a list of personal data) and the account's ledger
    account = new_account(server, 100)
    session = server.session(account.key)
    job = finished_job(session, server, email_csv(30, bad_every=10))
    assert job_objects(server, job["id"])
    entries_before = account.entries()
    result = download(session, server, job["id"]).content
    # When its owner cancels it (a cancel sent just as the job completed)
    cancel = session.delete(f"{server.base_url}/api/bulk-jobs", params={"id": job["id"]}, timeout=30)
    # Then the answer is 409 job_finished, and the job and its result are as they were
    assert cancel.status_code == 409 and cancel.json()["error"] == "job_finished", cancel.text
    assert status(session, server, job["id"])["status"] == "completed"
    assert download(session, server, job["id"]).content == result
    # When its owner asks for the purge itself
    resp = session.delete(f"{server.base_url}/api/bulk-jobs", params={"id": job["id"], "purge": "true"}, timeout=30)
    # Then the answer says it is deleted
    assert resp.status_code == 200 and resp.json() == {"id": job["id"], "status": "deleted"}
    # And every later read answers 404 job_not_found
    for method, path in (("GET", "/api/bulk-jobs"), ("GET", "/api/bulk-jobs/download"), ("DELETE", "/api/bulk-jobs")):
        later = session.request(method, f"{server.base_url}{path}", params={"id": job["id"]}, timeout=30)
        assert later.status_code == 404 and later.json()["error"] == "job_not_found", (method, path, later.text)
    # And no version of its upload, parts or result is left in the bucket
    assert job_objects(server, job["id"]) == []
    # And the ledger keeps the job's entries: the balance is still their sum
    assert account.entries() == entries_before and {e["job_id"] for e in entries_before} >= {job["id"]}
    account.assert_balanced()


def test_a_running_job_is_cancelled_never_purged_and_purged_only_when_asked(slow_server: Server) -> None:
    # Given a job still running
    session = slow_server.session()
    job_id = post_job(session, slow_server, email_csv(3000)).json()["id"]
    # When a purge is asked for before it has ended
    early = session.delete(f"{slow_server.base_url}/api/bulk-jobs", params={"id": job_id, "purge": "true"}, timeout=30)
    # Then it is refused, and the job runs on
    assert early.status_code == 409 and early.json()["error"] == "job_not_finished", early.text
    # When it is cancelled
    first = session.delete(f"{slow_server.base_url}/api/bulk-jobs", params={"id": job_id}, timeout=30)
    # Then it is cancelled: the rows done so far are kept for the result, which a second cancel does not touch
    assert first.status_code == 200 and first.json()["status"] == "cancelled"
    ended = wait_for(
        lambda: (s := status(session, slow_server, job_id))["result_ready"] and s, timeout=60, what="the result"
    )
    again = session.delete(f"{slow_server.base_url}/api/bulk-jobs", params={"id": job_id}, timeout=30)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    assert download(session, slow_server, job_id).status_code == 200
    assert ended["status"] == "cancelled" and job_objects(slow_server, job_id)
    # And only the purge, asked for, deletes it
    assert purge_until_gone(session, slow_server, job_id) == {"id": job_id, "status": "deleted"}
    assert session.get(f"{slow_server.base_url}/api/bulk-jobs", params={"id": job_id}, timeout=30).status_code == 404
    assert job_objects(slow_server, job_id) == []


def semicolon_leads(rows: int) -> bytes:
    """What German-locale Excel exports: `;`-separated, some addresses invalid, a cell holding a `;`."""
    lines = ["Name;E-Mail;Nr"]
    for i in range(rows):
        email = f"kaputt-{i}" if i % 5 == 4 else f"person{i}@beispiel{i % 7}.de"
        lines.append(f'"Müller; Jürgen {i}";{email};{i}')
    return ("\r\n".join(lines) + "\r\n").encode()


def ready_variant(session: requests.Session, server: Server, job_id: str, **params: str) -> requests.Response:
    """Ask for a variant until it is built: 202 with Retry-After first, then the file."""
    first = download(session, server, job_id, **params)
    if first.status_code == 202:
        assert int(first.headers["Retry-After"]) >= 1 and first.json()["ready"] is False
    return wait_for(
        lambda: (r := download(session, server, job_id, **params)).status_code != 202 and r,
        timeout=60,
        interval=0.2,
        what=f"variant {params}",
    )


def test_download_variants_filtered_json_lines_and_other_delimiters(server: Server) -> None:
    # Given a finished job from a semicolon-separated upload, 8 good and 2 invalid addresses
    session = server.session()
    job = finished_job(session, server, semicolon_leads(10), filename="kunden.csv")
    # When the result is downloaded as it is
    plain = download(session, server, job["id"])
    # Then it keeps the upload's delimiter and is named after the upload
    assert (
        plain.status_code == 200
        and plain.headers["Content-Disposition"] == 'attachment; filename="kunden.enriched.csv"'
    )
    rows = list(csv.reader(io.StringIO(plain.content.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert rows[0][:3] == ["Name", "E-Mail", "Nr"] and rows[0][-2:] == ["status", "error"] and len(rows) == 11
    assert rows[1][0] == "Müller; Jürgen 0"
    # When only the invalid rows are asked for, as JSON Lines
    invalid = ready_variant(session, server, job["id"], status="invalid", format="jsonl")
    # Then they come (after a 202 while it is built), one object per row, named after their segment, .jsonl
    assert invalid.status_code == 200 and invalid.headers["Content-Type"].startswith("application/x-ndjson")
    assert invalid.headers["Content-Disposition"] == 'attachment; filename="kunden.enriched.invalid.jsonl"'
    objects = [json.loads(line) for line in invalid.content.decode("utf-8").splitlines()]
    assert [o["Nr"] for o in objects] == ["4", "9"] and {o["status"] for o in objects} == {"invalid"}
    # When the ok rows are asked for comma-separated
    ok = ready_variant(session, server, job["id"], status="ok", delimiter="comma")
    ok_rows = list(csv.reader(io.StringIO(ok.content.decode("utf-8-sig"), newline="")))
    assert ok.content.startswith(b"\xef\xbb\xbf") and len(ok_rows) == 9
    assert ok_rows[1][0] == "Müller; Jürgen 0" and {r[-2] for r in ok_rows[1:]} == {"ok"}
    # And asked again, each is answered at once from what was built
    assert download(session, server, job["id"], status="ok", delimiter="comma").content == ok.content
    # And the status lists the result and both variants as ready
    listed = {v["name"]: v for v in status(session, server, job["id"])["variants"]}
    assert set(listed) == {"all.semicolon.csv", "invalid.jsonl", "ok.comma.csv"}
    assert all(v["ready"] for v in listed.values()) and listed["invalid.jsonl"]["rows"] == 2
    # And a purge removes the variants with the rest
    assert purge_until_gone(session, server, job["id"])["status"] == "deleted"
    assert job_objects(server, job["id"]) == []


def test_unknown_variant_parameters_are_400_naming_the_parameter(server: Server) -> None:
    session = server.session()
    job = finished_job(session, server, email_csv(3))
    for params, parameter in (
        ({"status": "valid"}, "status"),
        ({"format": "xls"}, "format"),
        ({"delimiter": ":"}, "delimiter"),
        ({"formula_guard": "maybe"}, "formula_guard"),
        ({"format": "jsonl", "formula_guard": "off"}, "formula_guard"),
    ):
        resp = download(session, server, job["id"], **params)
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_parameter", resp.text
        assert resp.json()["parameter"] == parameter


def test_preview_shows_detection_count_cost_and_first_rows_and_creates_nothing(server: Server) -> None:
    # Given an account with a few credits and a phone list whose header is in German
    account = new_account(server, 25)
    session = server.session(account.key)
    body = ("Name;Telefon\r\n" + "".join(f"Person {i};+49 30 {1234560 + i}\r\n" for i in range(12))).encode()
    # When it is previewed as a phone job
    resp = session.post(
        f"{server.base_url}/api/bulk-jobs/preview",
        files={"file": ("kontakte.csv", body, "text/csv")},
        data={"type": "phone"},
        timeout=60,
    )
    # Then the answer shows what the job would read, count and reserve
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["detected"] == {
        "encoding": "utf-8",
        "delimiter": "semicolon",
        "has_header": True,
        "column": "Telefon",
        "column_index": 1,
    }
    assert (answer["columns"], answer["total_rows"], answer["credits_required"]) == (["Name", "Telefon"], 12, 12)
    # And the first ten rows, enriched, with their row status
    assert len(answer["rows"]) == 10
    assert answer["rows"][0]["status"] == "ok" and answer["rows"][0]["enrichment"]["e164"] == "+49301234560"
    # And nothing was created or charged
    assert session.get(f"{server.base_url}/api/bulk-jobs", timeout=30).json()["jobs"] == []
    assert account.balance == 25 and len(account.entries()) == 1


@pytest.mark.parametrize(
    ("files", "data"),
    [
        ({}, {"type": "email"}),
        ({"file": ("a.csv", b"Email\r\na@example.com\r\n", "text/csv")}, {}),
        ({"file": ("a.csv", b"Email\r\na@example.com\r\n", "text/csv")}, {"type": "fax"}),
        ({"file": ("a.csv", b"Name,City\r\nAda,London\r\n", "text/csv")}, {"type": "email"}),
        ({"file": ("a.csv", email_csv(11), "text/csv")}, {"type": "email"}),
    ],
)
def test_preview_answers_every_refusal_exactly_as_creating_the_job(
    server: Server, files: dict[str, Any], data: dict[str, str]
) -> None:
    # Given an account with 10 credits
    session = server.session(new_account(server, 10).key)
    # When the same form is previewed and then posted
    previewed = session.post(f"{server.base_url}/api/bulk-jobs/preview", files=files or None, data=data, timeout=60)
    created = session.post(f"{server.base_url}/api/bulk-jobs", files=files or None, data=data, timeout=60)
    # Then both refuse it the same way
    assert 400 <= previewed.status_code < 500, previewed.text
    assert (previewed.status_code, previewed.json()) == (created.status_code, created.json())


# Exports of legacy Excel on Windows in each language's ANSI code page: names and cities as customers write them.
LEGACY_FILES = {
    # A short name list charset-normalizer alone read as cp1252 (issue 21): only `ń` and `ó` outside ASCII.
    "polish-names-cp1250": ("cp1250", [("Agnieszka Wójcik", "Poznań"), ("Zofia Kamińska", "Opole")]),
    "hungarian-cp1250": ("cp1250", [("Erdős Pál", "Győr"), ("Kovács Éva", "Pécs"), ("Szűcs Ödön", "Debrecen")]),
    "greek-cp1253": ("cp1253", [("Γιώργος Παπαδόπουλος", "Αθήνα"), ("Μαρία Οικονόμου", "Θεσσαλονίκη")]),
    "turkish-cp1254": ("cp1254", [("Çağrı Öztürk", "İzmir"), ("Gülşen Aydın", "Eskişehir"), ("Şükrü Yıldız", "Muğla")]),
    "polish-cp1250": (
        "cp1250",
        [
            ("Łukasz Żółkiewski", "Łódź"),
            ("Zofia Gęślą", "Gdańsk"),
            ("Jerzy Świątek", "Kraków"),
            ("Małgorzata Wąsik", "Wrocław"),
            ("Paweł Źrebiec", "Białystok"),
        ],
    ),
    "czech-cp1250": (
        "cp1250",
        [
            ("Jiří Dvořák", "Plzeň"),
            ("Žaneta Šťastná", "České Budějovice"),
            ("Ondřej Kůň", "Ústí nad Labem"),
            ("Věra Čermáková", "Hradec Králové"),
            ("Ťěpán Ďurďa", "Třebíč"),
        ],
    ),
    "russian-cp1251": (
        "cp1251",
        [
            ("Иван Петров", "Москва"),
            ("Ёлка Щукина", "Санкт-Петербург"),
            ("Юрий Жуков", "Новосибирск"),
            ("Анна Смирнова", "Екатеринбург"),
            ("Эдуард Хабибуллин", "Казань"),
        ],
    ),
    "german-cp1252": (
        "cp1252",
        [
            ("Jürgen Müller", "München"),
            ("Grete Weiß", "Düsseldorf"),
            ("Özlem Bär", "Köln"),
            ("Ärzte Größe", "Nürnberg"),
            ("Björn Schäfer", "Lüneburg"),
        ],
    ),
    "french-cp1252": (
        "cp1252",
        [
            ("François Lefèvre", "Orléans"),
            ("Hélène Bœuf", "Besançon"),
            ("Noël Garçon", "Saint-Étienne"),
            ("Cécile Œillet", "Rhône-Alpes"),
            ("Agnès Dupré", "Angoulême"),
        ],
    ),
}


@pytest.mark.parametrize("language", list(LEGACY_FILES))
def test_legacy_code_page_files_come_back_with_their_letters_intact(server: Server, language: str) -> None:
    # Given a semicolon export in the language's legacy Windows code page
    encoding, people = LEGACY_FILES[language]
    lines = ["Name;E-Mail;Stadt"] + [f"{name};person{i}@example.com;{city}" for i, (name, city) in enumerate(people)]
    body = ("\r\n".join(lines) + "\r\n").encode(encoding)
    session = server.session()
    # When it is previewed and then run as an email job
    previewed = session.post(
        f"{server.base_url}/api/bulk-jobs/preview",
        files={"file": (f"{language}.csv", body, "text/csv")},
        data={"type": "email"},
        timeout=60,
    ).json()
    job = finished_job(session, server, body, filename=f"{language}.csv")
    # Then the code page is recognized
    assert previewed["detected"]["encoding"] == encoding and previewed["rows"][0]["cells"][0] == people[0][0]
    # And the result (UTF-8) carries every name and city exactly as written
    rows = list(
        csv.reader(io.StringIO(download(session, server, job["id"]).content.decode("utf-8-sig")), delimiter=";")
    )
    assert [(r[0], r[2]) for r in rows[1:]] == people


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/bulk-jobs/download", {"id": "job_x", "status": "ok", "format": "csv", "delimiter": "tab"}),
        ("/api/webhooks/deliveries", {"webhook_id": "wh_x"}),
    ],
)
def test_a_method_a_route_does_not_take_is_405_whatever_its_parameters(
    server: Server, path: str, params: dict[str, str]
) -> None:
    # (schemathesis found TRACE with the route's own parameters answered 400 unknown_parameter)
    resp = server.session().request("TRACE", f"{server.base_url}{path}", params=params, timeout=30)
    assert resp.status_code == 405 and resp.json()["error"] == "method_not_allowed", resp.text
    assert resp.headers["Allow"] == "GET"
