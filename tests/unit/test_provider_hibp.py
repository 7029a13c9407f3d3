"""Darkweb through Have I Been Pwned v3, against a scripted server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from functions.enrich import darkweb
from functions.enrich.facts import DarkwebResult
from functions.enrich.online import Source, Sources
from functions.models import RowResult
from functions.providers.hibp import HibpProvider
from functions.providers.sources import from_settings
from functions.settings import EnrichSettings
from tests.unit.test_provider_http import Reply, ScriptedServer, Sleeps, quick_client, scripted_server


def enrich_through(values: list[str], provider: Any) -> list[RowResult]:
    """Enrich with this provider as the batch's hibp source (no cache)."""
    return darkweb.enrich(values, Sources(hibp=Source("hibp", DarkwebResult, provider.lookup_many)))


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    """The scripted server for this test."""
    yield from scripted_server(monkeypatch)


ADOBE = {
    "Name": "Adobe",
    "Title": "Adobe",
    "Domain": "adobe.com",
    "BreachDate": "2013-10-04",
    "DataClasses": ["Email addresses", "Passwords"],
    "PwnCount": 152445165,
}
LINKEDIN = {"Name": "LinkedIn", "BreachDate": "2012-05-05", "DataClasses": ["Email addresses", "Passwords"]}


def hibp(server: ScriptedServer, sleeps: Sleeps | None = None, **policy: object) -> HibpProvider:
    """An HIBP provider pointed at the test server with tiny timeouts and recorded backoff."""
    return HibpProvider("test-key", server.url, quick_client("hibp-test", sleeps, **policy))


def test_not_configured_without_a_key() -> None:
    # Given settings without an HIBP key
    sources = from_settings(EnrichSettings(hibp_base_url="https://hibp.invalid"))
    # When a batch is enriched
    results = darkweb.enrich(["a@example.com"], sources)
    # Then there is no provider and the row stays an uncharged not-configured error
    assert sources.hibp is None
    assert [(r.status, r.error) for r in results] == [("error", "provider_not_configured")]


def test_configured_by_settings_breached_and_clean_accounts(server: ScriptedServer) -> None:
    # Given HIBP configured by the settings at the test server, which knows one breached account
    settings = EnrichSettings(hibp_api_key="test-key", hibp_base_url=server.url, hibp_requests_per_minute=60000)
    server.respond = lambda seen: (
        Reply(body=[ADOBE, LINKEDIN])
        if seen.path == "/breachedaccount/john%2Bshop%40example.com"
        else Reply(status=404, body=b"")
    )
    # When a batch with a tagged address, its duplicate and a clean address is enriched
    results = darkweb.enrich(
        ["John+Shop@Example.com", "john+shop@example.com", "clean@example.org"], from_settings(settings)
    )
    # Then the breached rows summarize the breaches, the clean one is ok and not breached
    assert [(r.status, r.error) for r in results] == [("ok", None)] * 3
    assert results[0].data == {
        "query": "john+shop@example.com",
        "query_type": "email",
        "breached": True,
        "breach_count": 2,
        "breaches": "Adobe;LinkedIn",
        "latest_breach": "2013-10-04",
        "data_classes": "Email addresses;Passwords",
        "from_cache": False,
    }
    assert results[2].data["breached"] is False
    assert results[2].data["breach_count"] == 0
    # And each distinct account was asked once, with the key and the full breach records
    assert sorted(s.path for s in server.requests) == [
        "/breachedaccount/clean%40example.org",
        "/breachedaccount/john%2Bshop%40example.com",
    ]
    assert all(s.headers["hibp-api-key"] == "test-key" for s in server.requests)
    assert all(s.query == {"truncateResponse": ["false"]} for s in server.requests)


def test_domains_ask_for_the_breaches_of_that_domain(server: ScriptedServer) -> None:
    # Given a server listing the breaches of adobe.com
    server.script(Reply(body=[ADOBE]))
    # When a URL on that domain is enriched
    results = enrich_through(["https://www.adobe.com/login"], hibp(server))
    # Then the registrable domain was asked and the row shows its breach
    assert server.requests[0].path == "/breaches"
    assert server.requests[0].query == {"domain": ["adobe.com"]}
    assert results[0].data["query_type"] == "domain"
    assert results[0].data["breaches"] == "Adobe"


def test_timeout_becomes_a_provider_timeout_row(server: ScriptedServer) -> None:
    # Given a server slower than the client's timeout
    server.script(Reply(delay=5.0, body=[ADOBE]))
    # When an address is enriched
    results = enrich_through(["a@example.com"], hibp(server, attempts=2))
    # Then the row is an uncharged timeout error that still shows its query
    assert [(r.status, r.error) for r in results] == [("error", "provider_timeout")]
    assert results[0].data["query"] == "a@example.com"


def test_429_with_retry_after_then_success(server: ScriptedServer) -> None:
    # Given a server that rate limits once with Retry-After, then answers
    server.script(Reply(status=429, headers={"Retry-After": "2"}, body={"statusCode": 429}), Reply(body=[LINKEDIN]))
    sleeps = Sleeps()
    # When an address is enriched
    results = enrich_through(["a@example.com"], hibp(server, sleeps))
    # Then the client waited as told and the row is ok
    assert sleeps.calls == [2.0]
    assert [(r.status, r.data["breaches"]) for r in results] == [("ok", "LinkedIn")]


def test_5xx_exhausted_is_a_provider_error_row(server: ScriptedServer) -> None:
    # Given a server that keeps failing
    server.script(Reply(status=502, body=b"bad gateway"))
    # When two addresses are enriched
    results = enrich_through(["a@example.com", "b@example.com"], hibp(server, attempts=3))
    # Then both rows are provider errors after three attempts each, and the batch did not raise
    assert [(r.status, r.error) for r in results] == [("error", "provider_error")] * 2
    assert len(server.requests) == 6


@pytest.mark.parametrize("body", [b"{broken", b'{"Name": "not a list"}', b'[{"Title": "no name"}]'])
def test_malformed_answer_is_a_bad_response_row(server: ScriptedServer, body: bytes) -> None:
    # Given a server answering 200 with something that is not a list of breaches
    server.script(Reply(body=body))
    # When an address is enriched
    results = enrich_through(["a@example.com"], hibp(server))
    # Then the row is an uncharged bad-response error
    assert [(r.status, r.error) for r in results] == [("error", "provider_bad_response")]
