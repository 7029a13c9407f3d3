"""Google search through a programmable search JSON API, against a scripted server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from functions.enrich import google
from functions.enrich.facts import GoogleResult
from functions.enrich.online import Source, Sources
from functions.models import RowResult
from functions.providers.search import SearchProvider
from functions.providers.sources import from_settings
from functions.settings import EnrichSettings
from tests.unit.test_provider_http import Reply, ScriptedServer, Sleeps, quick_client, scripted_server


def enrich_through(values: list[str], provider: Any) -> list[RowResult]:
    """Enrich with this provider as the batch's search source (no cache)."""
    return google.enrich(values, Sources(search=Source("search", GoogleResult, provider.lookup_many)))


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    """The scripted server for this test."""
    yield from scripted_server(monkeypatch)


ANSWER = {
    "kind": "customsearch#search",
    "searchInformation": {"searchTime": 0.2, "totalResults": "12300"},
    "items": [{"title": f"Pizza {i}", "link": f"https://pizza{i}.test/", "snippet": f"Slice {i}"} for i in range(1, 6)],
}


def search(server: ScriptedServer, sleeps: Sleeps | None = None, **policy: object) -> SearchProvider:
    """A search provider pointed at the test server with tiny timeouts and recorded backoff."""
    return SearchProvider("test-key", "engine-1", server.url, quick_client("search-test", sleeps, **policy))


@pytest.mark.parametrize("given", [{}, {"search_api_key": "k"}, {"search_engine_id": "cx"}])
def test_not_configured_without_key_and_engine(given: dict[str, str]) -> None:
    # Given at most one of the two required settings
    sources = from_settings(EnrichSettings.model_validate(given))
    # When a query is enriched
    results = google.enrich(["pizza"], sources)
    # Then the row stays an uncharged not-configured error
    assert sources.search is None
    assert [(r.status, r.error) for r in results] == [("error", "provider_not_configured")]


def test_configured_by_settings_first_results_become_columns(server: ScriptedServer) -> None:
    # Given the search API configured by the settings at the test server
    settings = EnrichSettings(
        search_api_key="test-key",
        search_engine_id="engine-1",
        search_base_url=f"{server.url}/customsearch/v1",
        search_requests_per_minute=60000,
    )
    server.script(Reply(body=ANSWER))
    # When a query is enriched
    results = google.enrich(["best  pizza"], from_settings(settings))
    # Then the request carried key, engine, query and the result count
    assert server.requests[0].path == "/customsearch/v1"
    assert server.requests[0].query == {"key": ["test-key"], "cx": ["engine-1"], "q": ["best pizza"], "num": ["3"]}
    # And the row holds the total and the first three results
    assert results[0].status == "ok"
    assert results[0].data["total_results"] == 12300
    assert results[0].data["result_count"] == 3
    assert results[0].data["result_1_url"] == "https://pizza1.test/"
    assert results[0].data["result_3_snippet"] == "Slice 3"
    assert tuple(results[0].data) == google.COLUMNS


def test_a_search_without_hits_is_ok_and_empty(server: ScriptedServer) -> None:
    # Given an answer without items
    server.script(Reply(body={"searchInformation": {"totalResults": "0"}}))
    # When a query is enriched
    results = enrich_through(["zzqxj"], search(server))
    # Then the row is ok with no results
    assert (results[0].status, results[0].data["result_count"], results[0].data["result_1_url"]) == ("ok", 0, None)


def test_timeout_becomes_a_provider_timeout_row(server: ScriptedServer) -> None:
    # Given a server slower than the client's timeout
    server.script(Reply(delay=5.0, body=ANSWER))
    # When a query is enriched
    results = enrich_through(["pizza"], search(server, attempts=2))
    # Then the row is an uncharged timeout error with its query
    assert [(r.status, r.error, r.data["query"]) for r in results] == [("error", "provider_timeout", "pizza")]


def test_429_with_retry_after_then_success(server: ScriptedServer) -> None:
    # Given a server that rate limits once with Retry-After, then answers
    server.script(Reply(status=429, headers={"Retry-After": "1"}, body={"error": {"code": 429}}), Reply(body=ANSWER))
    sleeps = Sleeps()
    # When a query is enriched
    results = enrich_through(["pizza"], search(server, sleeps))
    # Then the client waited as told and the row is ok
    assert sleeps.calls == [1.0]
    assert results[0].status == "ok"


def test_5xx_exhausted_is_a_provider_error_row(server: ScriptedServer) -> None:
    # Given a server that keeps failing
    server.script(Reply(status=500, body={"error": {"code": 500}}))
    # When a query is enriched
    results = enrich_through(["pizza"], search(server, attempts=2))
    # Then the row is a provider error after both attempts
    assert [(r.status, r.error) for r in results] == [("error", "provider_error")]
    assert len(server.requests) == 2


def test_429_exhausted_is_a_rate_limited_row(server: ScriptedServer) -> None:
    # Given a server that keeps rate limiting
    server.script(Reply(status=429, headers={"Retry-After": "0"}))
    # When a query is enriched
    results = enrich_through(["pizza"], search(server, attempts=2))
    # Then the row says rate limited
    assert [(r.status, r.error) for r in results] == [("error", "provider_rate_limited")]


@pytest.mark.parametrize("body", [b"<html>quota</html>", b'["not", "an", "object"]', b'{"items": [{"title": 5}]}'])
def test_malformed_answer_is_a_bad_response_row(server: ScriptedServer, body: bytes) -> None:
    # Given a server answering 200 with something that is not a search answer
    server.script(Reply(body=body))
    # When a query is enriched
    results = enrich_through(["pizza"], search(server))
    # Then the row is an uncharged bad-response error
    assert [(r.status, r.error) for r in results] == [("error", "provider_bad_response")]
