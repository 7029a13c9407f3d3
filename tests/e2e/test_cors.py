"""CORS on the local API as deployed with `bulkapi:corsOrigins`: the gateway answers preflights, the functions name
the allowed origin on every answer, so a page on another origin can call `bulkapi serve`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.e2e.conftest import Server, start_server, stop_server

pytestmark = pytest.mark.e2e

APP = "https://app.example.com"
ADMIN = "https://admin.example.com"


@pytest.fixture(scope="module")
def cors_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("cors"), BULKAPI_CORS_ORIGINS=f"{APP},{ADMIN}")
    yield srv
    stop_server(srv)


def preflight(server: Server, path: str, origin: str, method: str = "POST") -> requests.Response:
    # What a browser sends before a request with an Authorization header: no key, no body.
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    return requests.options(f"{server.base_url}{path}", headers=headers, timeout=30)


def test_a_preflight_is_answered_by_the_gateway_for_each_configured_origin(cors_server: Server) -> None:
    # Given origins configured as -c bulkapi:corsOrigins would be deployed
    # When a page on either origin asks before calling a route (proxied, streamed or public)
    for path, method in (("/api/bulk-jobs", "POST"), ("/api/bulk-lookup", "POST"), ("/api/credits", "GET")):
        for origin in (APP, ADMIN):
            answer = preflight(cors_server, path, origin, method)
            # Then the gateway answers without a key (it was 401 from the authorizer), naming that origin
            assert answer.status_code == 204, (path, answer.status_code, answer.text)
            assert answer.headers["Access-Control-Allow-Origin"] == origin
            assert {"Authorization", "Content-Type"} <= set(answer.headers["Access-Control-Allow-Headers"].split(","))
            assert method in answer.headers["Access-Control-Allow-Methods"].split(",")
    # And an origin that is not configured is not named (the browser then refuses the call)
    other = preflight(cors_server, "/api/bulk-jobs", "https://evil.example")
    assert other.headers.get("Access-Control-Allow-Origin") != "https://evil.example"


def test_the_answers_themselves_name_the_origin(cors_server: Server) -> None:
    # Given a page on a configured origin
    session = cors_server.session()
    session.headers["Origin"] = ADMIN
    # When it reads its balance and streams a lookup
    credits = session.get(f"{cors_server.base_url}/api/credits", timeout=30)
    stream = session.post(f"{cors_server.base_url}/api/bulk-lookup", json={"emails": ["ada@example.com"]}, timeout=30)
    # Then both answers allow that origin to read them
    assert credits.status_code == 200 and credits.headers["Access-Control-Allow-Origin"] == ADMIN
    assert stream.status_code == 200 and stream.headers["Access-Control-Allow-Origin"] == ADMIN
    assert stream.text.endswith("data: [DONE]\n\n")
