"""The API's contract: the committed openapi.json is current and valid OpenAPI 3.1, and every error code the code
can produce is in the document and in README's error table."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from openapi_spec_validator import validate

from functions.errors import ADMIN_ERRORS, API_ERRORS, JOB_ERRORS, ConflictError, InputError, NotFoundError
from functions.handlers import api, contract
from infra.auth import GATEWAY_ANSWERS

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
