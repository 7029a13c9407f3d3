"""Company rows with the website source on: a domain input's home page; names are never fetched."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from functions.enrich import company
from functions.enrich._common import ProviderFailure
from functions.enrich.online import Source, Sources
from functions.providers.sources import from_settings
from functions.providers.website import WebsiteFacts, WebsiteProvider
from functions.settings import EnrichSettings
from tests.unit.test_provider_http import Reply, ScriptedServer, Sleeps, scripted_server
from tests.unit.test_provider_website import HOME, HTML


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    """The scripted web server for this test."""
    yield from scripted_server(monkeypatch)


def website_at(server: ScriptedServer) -> Sources:
    """The website source with every domain resolving to the test server (its port added to each domain)."""
    port = int(server.url.rsplit(":", 1)[1])
    fetcher = WebsiteProvider(
        timeout=1.0, scheme="http", allow_private=True, sleep=Sleeps(), resolve=lambda host, p, allow: "127.0.0.1"
    )

    def lookup_many(domains: Sequence[str]) -> list[WebsiteFacts | ProviderFailure]:
        return fetcher.lookup_many([f"{d}:{port}" for d in domains])

    return Sources(website=Source("website", WebsiteFacts, lookup_many))


def test_domain_inputs_get_their_home_page_and_names_are_not_fetched(server: ScriptedServer) -> None:
    # Given web servers for acme.de (a home page) and gone.de (404 everywhere)
    server.respond = lambda seen: (
        Reply(body=HOME, headers=HTML) if seen.headers["host"].startswith("acme.de") else Reply(status=404, body=b"")
    )
    # When a URL of acme.de, a company name and a domain with a broken site are enriched
    rows = company.enrich(["https://www.acme.de/about", "Acme GmbH", "gone.de"], website_at(server))
    # Then the domain input carries its home page's facts, fetched from the registrable domain
    assert rows[0].status == "ok"
    assert rows[0].data["domain"] == "acme.de"
    assert rows[0].data["website_title"] == "Acme Corp & Sons | Widgets since 1901"
    assert rows[0].data["linkedin"] == "https://www.linkedin.com/company/acme"
    assert rows[0].data["from_cache"] is False
    # And the name was not fetched (nothing to fetch), its offline columns as ever
    assert rows[1].status == "ok" and rows[1].data["website_url"] is None and rows[1].data["name"] == "Acme"
    # And the broken site is an uncharged error with the website's code
    assert (rows[2].status, rows[2].error) == ("error", "website_error")
    assert sorted(s.headers["host"].split(":")[0] for s in server.requests) == ["acme.de", "gone.de"]


def test_the_website_source_follows_the_settings() -> None:
    # Given settings without and with the website source
    off, on = from_settings(EnrichSettings()), from_settings(EnrichSettings(website_enabled=True))
    # Then it is built only when turned on
    assert off.website is None and on.website is not None
