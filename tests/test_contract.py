"""The API's contract: the committed openapi.json is current and valid OpenAPI 3.1, and every error code the code
can produce is in the document and in README's error table."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from openapi_spec_validator import validate

from functions.errors import (
    ADMIN_ERRORS,
    API_ERRORS,
    JOB_ERRORS,
    ConflictError,
    InputError,
    NotFoundError,
    error_body,
)
from functions.handlers import api
from functions.http import contract
from infra.api_access import GATEWAY_ANSWERS
from tests.encrata_go import new_api_error

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_openapi_json_is_the_generated_document() -> None:
    # Given the document the API serves
    served = api.document()
    # Then the committed copy is the same (regenerate with `./dev bulkapi openapi > openapi.json`)
    committed = json.loads((ROOT / "openapi.json").read_text())
    assert committed == served, "openapi.json is stale: run `./dev bulkapi openapi > openapi.json`"


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = api.document()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_route_is_in_the_document_with_its_errors() -> None:
    # Given every REST route of the API function and every stream route
    doc = api.document()
    routes = {(route.method.lower(), route.path) for route in api.app._static_routes}
    routes |= {("post", path) for path in contract.STREAM_ROUTES}
    # Then each is described, and each keyed one answers 401 in the error shape
    described = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert routes <= described, routes - described
    for method, path in routes - contract.PUBLIC:
        assert "401" in doc["paths"][path][method]["responses"], (method, path)
    # And the webhook deliveries are described too
    assert set(doc["webhooks"]) == {"bulk_job.completed", "bulk_job.failed", "bulk_job.cancelled"}


def _codes_in_code() -> set[str]:
    found: set[str] = set()
    for folder in ("functions", "local"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            found |= set(re.findall(r'\bcode\s*=\s*"([a-z_]+)"', text))
            found |= set(re.findall(r'"error":\s*"([a-z_]+)"', text))
    return found


# The class defaults of the generic errors, which every raise overrides (checked below).
GENERIC = {InputError: "invalid_input", NotFoundError: "not_found", ConflictError: "conflict"}


def test_every_error_code_the_code_can_produce_is_registered() -> None:
    # Given every `code=...` and literal error body in the functions and the local runtime, and what API Gateway
    # answers itself
    used = _codes_in_code() - set(GENERIC.values())
    for status, code, _message in GATEWAY_ANSWERS.values():
        assert API_ERRORS.get(code) == int(status), code
    # Then each is an API error (with its status), a code a job ends with, or an admin-only one
    assert used - set(API_ERRORS) - set(JOB_ERRORS) - ADMIN_ERRORS == set()
    assert not set(JOB_ERRORS) & set(API_ERRORS)


def test_no_generic_error_is_raised_without_its_own_code() -> None:
    # Given every call of InputError, NotFoundError or ConflictError in the functions
    names = {cls.__name__ for cls in GENERIC}
    bare = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in (ROOT / "functions").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in names
        and not any(k.arg == "code" for k in node.keywords)
    ]
    # Then each names a code of its own (the generic default would be a code no table lists)
    assert bare == []


def test_readme_error_table_lists_exactly_the_api_errors_with_their_status() -> None:
    # Given README's error table (| HTTP | `error` | When |)
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| HTTP | `error` | When |") :].split("\n\n")[0]
    listed: dict[str, int] = {}
    for line in table.splitlines()[2:]:
        status = line.split("|")[1].strip()
        for code in re.findall(r"`([a-z_]+)`", line.split("|")[2]):
            listed[code] = int(status)
    # Then it names every code the API answers, with the right status, and nothing else
    assert listed == API_ERRORS


def test_readme_lists_exactly_the_codes_a_job_can_fail_with() -> None:
    # Given README's table of the codes only a job's status carries (| `error` | Why |)
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| Job `error` | Why |") :].split("\n\n")[0]
    listed = {code for line in table.splitlines()[2:] for code in re.findall(r"`([a-z_]+)`", line.split("|")[1])}
    # Then it names each of them, and nothing else
    assert listed == set(JOB_ERRORS)


def test_every_error_answer_is_the_one_shared_shape_with_the_routes_codes_listed() -> None:
    # Given every operation of the document
    doc = api.document()
    listed: set[str] = set()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            codes = op["x-error-codes"]
            for status, answer in op["responses"].items():
                if int(status.rstrip("X") or 0) < 400:
                    continue
                # Then each error answer is a reference to the shared answer of its status, not a schema of its own
                assert answer["$ref"] == f"#/components/responses/{contract.RESPONSE_NAMES[int(status)]}"
                # And names exactly the codes the route lists for that status, each of that status
                assert all(f"`{code}`" in answer["description"] for code in codes[status]), (method, path)
                assert {API_ERRORS[code] for code in codes[status]} == {int(status)}
                listed |= set(codes[status])
    shared = {r["content"]["application/json"]["schema"]["$ref"] for r in doc["components"]["responses"].values()}
    assert shared == {"#/components/schemas/ErrorResponse"}
    assert "code" in doc["components"]["schemas"]["ErrorResponse"]["required"]
    # And every code the API answers is listed on some operation (but the one for a path that has no operation)
    assert set(API_ERRORS) - listed == {"route_not_found"}


def test_the_go_client_reads_the_code_of_the_gateways_own_answers() -> None:
    # Given each answer API Gateway gives itself (its template body)
    for status, code, message in GATEWAY_ANSWERS.values():
        # When the official Go client turns it into an error
        go = new_api_error(int(status), json.dumps(error_body(code, message)).encode())
        # Then its Code is the API's code and its message ours
        assert (go.code, go.message) == (code, message)
    # (a body without `code`, as before, left the Go client's Code empty)
    assert new_api_error(400, b'{"error": "no_rows", "message": "x"}').code == ""
    assert new_api_error(400, b"{}").type == "InvalidRequestError"


def test_every_request_body_has_an_example_for_the_docs_page_to_fill_in() -> None:
    # Given every operation that takes a body
    doc = api.document()
    bodies = [
        (path, method, media_type, content)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        for media_type, content in op.get("requestBody", {}).get("content", {}).items()
    ]
    assert bodies
    for path, method, media_type, content in bodies:
        if media_type == "multipart/form-data":
            # Then a form's fields each have one (but the file, which the user picks)
            fields = content["schema"]["properties"]
            assert all(prop.get("examples") for name, prop in fields.items() if name != "file"), path
        else:
            # Then a JSON body has one, so the page does not send `"string"` for each field
            assert content.get("example") or content.get("examples"), (method, path)


def test_the_download_lists_the_files_media_types_before_the_link() -> None:
    # Given the download's 200, which is the file (CSV or JSON Lines), or a link to it for `Accept: application/json`
    served = api.document()["paths"]["/api/bulk-jobs/download"]["get"]["responses"]["200"]["content"]
    committed = json.loads((ROOT / "openapi.json").read_text())["paths"]["/api/bulk-jobs/download"]["get"]
    # Then the file's types come first, in the served and the committed document alike: a generator takes the first
    # media type of a status, and one that took JSON parsed every CSV as JSON
    assert (
        list(served)
        == list(committed["responses"]["200"]["content"])
        == [
            "text/csv",
            "application/x-ndjson",
            "application/json",
        ]
    )
