"""The contract over HTTP against `bulkapi serve`: unknown and out-of-bounds parameters answer 400 with a clear code
(never a 5xx or a silent default), the document and its page are served without a key, and schemathesis fuzzes
every operation against the served document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from functions.handlers import api
from local.gateway import MAX_REQUEST_BYTES
from tests.e2e.conftest import Server, new_account
from tests.encrata_go import new_api_error
from tests.helpers import email_csv

pytestmark = pytest.mark.e2e

BIG = "x" * 500_000


def _error(resp: requests.Response) -> tuple[int, str, Any]:
    body = resp.json()
    return resp.status_code, body["error"], body.get("parameter")


@pytest.mark.parametrize(
    ("path", "params", "expected"),
    [
        ("/api/bulk-jobs/download", {"id": "job_x", "filter": "valid"}, (400, "unknown_parameter", "filter")),
        ("/api/bulk-jobs", {"type": "email"}, (400, "unknown_parameter", "type")),
        ("/api/bulk-jobs", {"cursor": "eyJhIjoxfQ"}, (400, "invalid_cursor", None)),
        ("/api/bulk-jobs", {"limit": "\uff15"}, (400, "invalid_parameter", "limit")),  # a full-width 5
        ("/api/bulk-jobs", {"limit": "0"}, (400, "invalid_parameter", "limit")),
        ("/api/bulk-jobs", {"status": "done"}, (400, "invalid_parameter", "status")),
        ("/api/bulk-jobs", {"id": "x" * 65}, (400, "invalid_parameter", "id")),
        ("/api/bulk-jobs", {"id": "job_x", "cursor": "abc"}, (400, "unknown_parameter", "cursor")),
        ("/api/credits", {"verbose": "1"}, (400, "unknown_parameter", "verbose")),
    ],
)
def test_unknown_or_invalid_query_parameters_are_400_naming_them(
    server: Server, path: str, params: dict[str, str], expected: tuple[int, str, Any]
) -> None:
    # When a route gets a parameter it does not take, or one out of its bounds
    resp = server.session().get(f"{server.base_url}{path}", params=params, timeout=30)
    # Then it is a 400 naming it, never ignored and never a 5xx
    assert _error(resp) == expected, resp.text
    # And the code is one the document lists on the operation
    assert expected[1] in api.document()["paths"][path]["get"]["x-error-codes"]["400"]


def test_a_cursor_from_another_account_is_refused(server: Server) -> None:
    # Given a cursor naming another account's jobs (well formed)
    other = {"pk": {"S": "JOB#job_1"}, "sk": {"S": "JOB"}, "account_id": {"S": "acct_other"}, "created_at": {"S": "x"}}
    cursor = __import__("base64").urlsafe_b64encode(json.dumps(other).encode()).decode().rstrip("=")
    # When it is used
    resp = server.session().get(f"{server.base_url}/api/bulk-jobs", params={"cursor": cursor}, timeout=30)
    # Then it is refused, not used to page another tenant's index
    assert _error(resp) == (400, "invalid_cursor", None)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"url": "https://hooks.example.com/x", "description": BIG}, (400, "invalid_parameter", "description")),
        ({"url": "https://hooks.example.com/" + BIG}, (400, "invalid_webhook_url", "url")),
        (
            {"url": "https://hooks.example.com/x", "events": ["bulk_job.completed"] * 11},
            (400, "invalid_events", "events"),
        ),
        ({"url": "https://hooks.example.com/x", "colour": "red"}, (400, "unknown_parameter", "colour")),
    ],
)
def test_oversized_or_unknown_webhook_fields_are_400_not_a_database_error(
    server: Server, body: dict[str, Any], expected: tuple[int, str, Any]
) -> None:
    # When a webhook is registered with a field over its limit, or one it does not take
    resp = server.session().post(f"{server.base_url}/api/webhooks", json=body, timeout=30)
    # Then it is a 400 naming the field, with nothing of DynamoDB's text in it
    assert _error(resp) == expected, resp.text
    assert "Item size" not in resp.text


def test_a_webhook_body_that_is_not_json_is_415(server: Server) -> None:
    resp = server.session().post(
        f"{server.base_url}/api/webhooks", data="url=x", headers={"Content-Type": "text/plain"}, timeout=30
    )
    assert _error(resp)[:2] == (415, "unsupported_media_type")


def test_an_upload_with_a_huge_file_name_is_400_not_a_retryable_503(server: Server) -> None:
    # When a CSV is uploaded under a 450 KB file name
    resp = server.session().post(
        f"{server.base_url}/api/bulk-jobs",
        files={"file": ("a" * 450_000 + ".csv", email_csv(3), "text/csv")},
        data={"type": "email"},
        timeout=60,
    )
    # Then it is refused as invalid input, which no retry can fix
    assert _error(resp) == (400, "invalid_parameter", "filename")


def test_an_unknown_form_field_is_400(server: Server) -> None:
    resp = server.session().post(
        f"{server.base_url}/api/bulk-jobs",
        files={"file": ("a.csv", email_csv(3), "text/csv")},
        data={"type": "email", "colum": "email"},
        timeout=60,
    )
    assert _error(resp) == (400, "unknown_parameter", "colum")


def test_the_document_and_its_page_are_served_without_a_key(server: Server) -> None:
    # When the contract is fetched with no key
    doc = requests.get(f"{server.base_url}/api/openapi.json", timeout=30)
    page = requests.get(f"{server.base_url}/api/docs", timeout=30)
    # Then it is the committed document, and the page embeds it with Swagger UI's own files
    committed = json.loads((Path(__file__).resolve().parents[2] / "openapi.json").read_text())
    assert doc.status_code == 200 and doc.json() == committed
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "SwaggerUIBundle" in page.text and '"/api/bulk-jobs"' in page.text
    # And every answer is named by a request id
    assert doc.headers["X-Request-Id"] and page.headers["X-Request-Id"]


def test_a_method_a_route_does_not_take_is_405(server: Server) -> None:
    resp = server.session().patch(f"{server.base_url}/api/credits", timeout=30)
    assert _error(resp)[:2] == (405, "method_not_allowed") and resp.headers["Allow"] == "GET"
    # Found by schemathesis: a query parameter on a wrong method was answered as unknown, not as the method
    traced = server.session().request("TRACE", f"{server.base_url}/api/bulk-jobs/download", params={"id": "x"})
    assert _error(traced)[:2] == (405, "method_not_allowed") and traced.headers["Allow"] == "GET"
    streamed = server.session().request("TRACE", f"{server.base_url}/api/bulk-lookup")
    assert _error(streamed)[:2] == (405, "method_not_allowed") and streamed.headers["Allow"] == "POST"
    # Found by schemathesis once `/` became a route (the redirect to the console): TRACE / answered 404
    root = server.session().request("TRACE", f"{server.base_url}/")
    assert _error(root)[:2] == (405, "method_not_allowed") and root.headers["Allow"] == "GET"


# Bounded: a fixed number of examples per operation, one seed, and a time budget under 90 s in all.
FUZZ_EXAMPLES = int(os.environ.get("BULKAPI_FUZZ_EXAMPLES", "8"))
FUZZ_SECONDS = 75


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_contract(server: Server, tmp_path: Path) -> None:
    # Given a fresh account with plenty of credits and the served document
    account = new_account(server, 10_000_000)
    report = tmp_path / "schemathesis.json"
    # When schemathesis fuzzes every operation (bounded), with the account's key
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{server.base_url}/api/openapi.json",
            "-H",
            f"Authorization: Bearer {account.key}",
            "--max-examples",
            str(FUZZ_EXAMPLES),
            "--max-time",
            str(FUZZ_SECONDS),
            "--generation-deterministic",
            "--phases",
            "coverage,fuzzing",
            # The API checks content (a PNG is not a CSV, an URL must be https): a schema-valid request may be refused.
            "--exclude-checks",
            "positive_data_acceptance",
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(report),
            "--no-color",
        ],
        cwd=tmp_path,  # schemathesis keeps a cache in its working directory
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 60,
        check=False,
    )
    summary = run.stdout[run.stdout.find("SUMMARY") :]
    print(summary)
    # Then it tested every operation and found nothing: no 5xx, no answer that breaks the document
    assert "Tested: 19" in summary or "Tested: " in summary
    assert run.returncode == 0, run.stdout[-6000:]


def test_the_official_go_client_reads_the_code_of_every_kind_of_error(server: Server) -> None:
    # Given answers from each part of the service: the api function, the stream function, and the gateway itself
    keyed = server.session()
    answers = {
        "api function": keyed.get(f"{server.base_url}/api/bulk-jobs", params={"limit": "0"}, timeout=30),
        "stream function": keyed.post(f"{server.base_url}/api/bulk-lookup", json={"emails": []}, timeout=30),
        "gateway (no key)": requests.get(f"{server.base_url}/api/credits", timeout=30),
        "api function (404)": keyed.get(f"{server.base_url}/api/bulk-jobs", params={"id": "job_none"}, timeout=30),
        "gateway (body over its limit)": keyed.post(
            f"{server.base_url}/api/bulk-jobs", data=b"x" * (MAX_REQUEST_BYTES + 1), timeout=60
        ),
    }
    # When the Go client turns each into its error value (newAPIError)
    for where, resp in answers.items():
        body = resp.json()
        go = new_api_error(resp.status_code, resp.content)
        # Then its Code is the API's code (the body's `code` repeats `error`), and its message is ours
        assert body["code"] == body["error"], (where, body)
        assert go.code == body["error"] and go.message == body["message"], (where, go)
    assert new_api_error(answers["api function"].status_code, answers["api function"].content).type == (
        "InvalidRequestError"
    )
    assert answers["gateway (body over its limit)"].json()["code"] == "request_too_large"
    assert new_api_error(answers["gateway (no key)"].status_code, answers["gateway (no key)"].content).code == (
        "unauthorized"
    )


def test_an_idempotency_key_over_255_characters_answers_its_documented_code(server: Server) -> None:
    resp = server.session().post(
        f"{server.base_url}/api/bulk-jobs",
        files={"file": ("a.csv", email_csv(3), "text/csv")},
        data={"type": "email"},
        headers={"Idempotency-Key": "k" * 256},
        timeout=60,
    )
    assert _error(resp) == (400, "invalid_idempotency_key", "Idempotency-Key"), resp.text


def test_a_json_job_body_over_64_kib_is_request_too_large_not_a_file(server: Server) -> None:
    resp = server.session().post(
        f"{server.base_url}/api/bulk-jobs", json={"type": "email", "filename": "x" * (65 * 1024)}, timeout=60
    )
    assert _error(resp)[:2] == (413, "request_too_large"), resp.text
    assert resp.json()["max_bytes"] == 64 * 1024


def test_the_docs_page_has_the_consoles_policy_and_cannot_be_framed(server: Server) -> None:
    page = requests.get(f"{server.base_url}/api/docs", timeout=30)
    console = requests.get(f"{server.base_url}/console", timeout=30)
    assert page.headers["Content-Security-Policy"] == console.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_a_job_created_with_the_documents_form_examples_succeeds(server: Server) -> None:
    # Given the multipart form of the served document, each field filled as the docs page fills it (its example)
    doc = requests.get(f"{server.base_url}/api/openapi.json", timeout=30).json()
    form = doc["paths"]["/api/bulk-jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    examples = {name: prop["examples"][0] for name, prop in form["properties"].items() if name != "file"}
    assert {"type", "column"} <= set(examples)
    # (the page leaves out an optional field left empty)
    fields = {name: value for name, value in examples.items() if value != ""}
    # When a CSV is sent with them, as "Try it out" sends them
    resp = server.session().post(
        f"{server.base_url}/api/bulk-jobs",
        files={"file": ("leads.csv", email_csv(3), "text/csv"), **{k: (None, v) for k, v in fields.items()}},
        timeout=60,
    )
    # Then the job is created (not "no column 'string'")
    assert resp.status_code == 202, resp.text
    # And the JSON create's examples create jobs too
    for name, example in doc["paths"]["/api/bulk-jobs"]["post"]["requestBody"]["content"]["application/json"][
        "examples"
    ].items():
        created = server.session().post(f"{server.base_url}/api/bulk-jobs", json=example["value"], timeout=60)
        assert created.status_code in (201, 202), (name, created.text)


def test_limit_goes_with_id_and_is_ignored(server: Server) -> None:
    # Given a job
    created = server.session().post(
        f"{server.base_url}/api/bulk-jobs",
        files={"file": ("a.csv", email_csv(3), "text/csv")},
        data={"type": "email"},
        timeout=60,
    )
    assert created.status_code == 202, created.text
    # When its status is asked with the documented default `limit`, as a generated client sends it
    resp = server.session().get(
        f"{server.base_url}/api/bulk-jobs", params={"id": created.json()["id"], "limit": "20"}, timeout=30
    )
    # Then it is the job's status (not 400 "`limit` does not go with `id`")
    assert resp.status_code == 200 and resp.json()["id"] == created.json()["id"], resp.text
