"""Domain and IP rows with RDAP on: registration columns from the registry, special addresses never asked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from functions.enrich import domain, ip
from functions.providers.sources import from_settings
from functions.settings import EnrichSettings
from tests.unit.test_provider_http import Reply, ScriptedServer, Seen, scripted_server
from tests.unit.test_provider_rdap import ARIN_GOOGLE, VERISIGN_GOOGLE


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    """The scripted RDAP server for this test."""
    yield from scripted_server(monkeypatch)


def registry(seen: Seen) -> Reply:
    """google.com and 8.8.8.8 are known; every other name or address is not."""
    if seen.path == "/domain/google.com":
        return Reply(body=VERISIGN_GOOGLE)
    if seen.path == "/ip/8.8.8.8":
        return Reply(body=ARIN_GOOGLE)
    return Reply(status=404, body={"errorCode": 404})


def rdap_on(server: ScriptedServer) -> EnrichSettings:
    """RDAP at the test server, without a rate limit to wait for."""
    return EnrichSettings(rdap_enabled=True, rdap_base_url=server.url, rdap_requests_per_minute=60000)


def test_domain_rows_get_the_registration_of_their_registrable_domain(server: ScriptedServer) -> None:
    # Given RDAP on, at a registry that knows google.com only
    server.respond = registry
    sources = from_settings(rdap_on(server))
    # When a URL on a subdomain, the bare domain and a free name are enriched
    rows = domain.enrich(["https://mail.google.com/inbox", "google.com", "free-name-4711.com"], sources)
    # Then the first two carry google.com's registration (asked once), the free name is ok and not registered
    assert [r.status for r in rows] == ["ok", "ok", "ok"]
    assert rows[0].data["registrar"] == rows[1].data["registrar"] == "MarkMonitor Inc."
    assert rows[0].data["registered_at"] == "1997-09-15T04:00:00Z" and rows[0].data["registered"] is True
    assert rows[2].data["registered"] is False and rows[2].data["registrar"] is None
    assert sorted(s.path for s in server.requests) == ["/domain/free-name-4711.com", "/domain/google.com"]


def test_ip_rows_get_their_network_and_special_addresses_are_not_asked(server: ScriptedServer) -> None:
    # Given RDAP on
    server.respond = registry
    sources = from_settings(rdap_on(server))
    # When a public, an IPv4-mapped public, a private and a loopback address are enriched
    rows = ip.enrich(["8.8.8.8", "::ffff:8.8.8.8", "192.168.1.10", "::1"], sources)
    # Then the public ones carry the network (one lookup for both), the others are ok without network columns
    assert [r.status for r in rows] == ["ok"] * 4
    assert rows[0].data["network_owner"] == rows[1].data["network_owner"] == "Google LLC"
    assert rows[0].data["network_cidr"] == "8.8.8.0/24"
    assert rows[2].data["network_name"] is None and rows[3].data["network_name"] is None
    assert [s.path for s in server.requests] == ["/ip/8.8.8.8"]


def test_an_address_no_registry_knows_is_an_uncharged_error(server: ScriptedServer) -> None:
    # Given RDAP on, at a registry that does not know the address
    server.respond = registry
    # When it is enriched
    row = ip.enrich(["1.1.1.1"], from_settings(rdap_on(server)))[0]
    # Then the row is an error with RDAP's code, its offline columns kept
    assert (row.status, row.error) == ("error", "rdap_not_found")
    assert row.data["normalized"] == "1.1.1.1" and row.data["version"] == 4


def test_rdap_is_off_by_default() -> None:
    # Given default settings
    sources = from_settings(EnrichSettings())
    # When a domain is enriched
    row = domain.enrich(["google.com"], sources)[0]
    # Then nothing was asked and the registration columns are empty
    assert sources.rdap_domain is None and sources.rdap_ip is None
    assert row.status == "ok" and row.data["registered"] is None
