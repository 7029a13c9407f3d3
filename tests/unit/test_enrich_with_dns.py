"""Email and domain rows with DNS on: the mail domain's records decide validity, DNS failures are uncharged errors."""

from __future__ import annotations

from collections.abc import Iterator

import dns.rcode
import pytest

from functions.enrich import domain, email
from functions.enrich.online import Source, Sources
from functions.providers.dns_resolver import DnsFacts
from functions.providers.sources import from_settings
from functions.settings import EnrichSettings
from tests.fakes import MemoryCache
from tests.unit.test_provider_dns import (
    QUICK_TIMEOUT,
    DnsServer,
    Zone,
    provider,
    rcode_responder,
    zone_responder,
)


@pytest.fixture
def server() -> Iterator[DnsServer]:
    """The scripted DNS server for this test."""
    with DnsServer() as s:
        yield s


ZONE: Zone = {
    "acme.de": {"MX": ["10 mx.acme.de."], "A": ["192.0.2.1"], "TXT": ['"v=spf1 mx -all"']},
    "_dmarc.acme.de": {"TXT": ['"v=DMARC1; p=reject"']},
    "parked.com": {"A": ["192.0.2.2"]},
    "nomail.org": {"MX": ["0 ."], "A": ["192.0.2.3"]},
    "empty.net": {"TXT": ['"hello"']},
    "xn--mnchen-3ya.de": {"MX": ["5 mail.xn--mnchen-3ya.de."]},
}


def dns_sources(server: DnsServer, cache: MemoryCache | None = None) -> Sources:
    """DNS through the test server (quick timeouts), optionally through a cache."""
    return Sources(dns=Source("dns", DnsFacts, provider(server).lookup_many, cache))


def test_mail_domain_dns_decides_validity(server: DnsServer) -> None:
    # Given a zone with a working mail domain, a parked one, a null MX, one without records and an IDN one
    server.respond = zone_responder(ZONE)
    values = [
        "john.doe@acme.de",
        "jane@parked.com",
        "x@nomail.org",
        "y@empty.net",
        "z@gone.example.com",
        "anna@münchen.de",
    ]
    # When the addresses are enriched with DNS
    rows = email.enrich(values, dns_sources(server))
    # Then every row is a charged ok row; validity and reason follow the DNS answers
    assert [r.status for r in rows] == ["ok"] * 6
    assert [(r.data["validity"], r.data["reason"]) for r in rows] == [
        ("valid", None),
        ("risky", "no_mx_implicit_a"),
        ("invalid", "null_mx"),
        ("invalid", "no_mx"),
        ("invalid", "domain_not_found"),
        ("valid", None),
    ]
    # And the DNS columns are the mail domain's (the IDN asked in its ASCII form)
    assert rows[0].data["mx"] == "mx.acme.de" and rows[0].data["spf"] == "v=spf1 mx -all"
    assert rows[0].data["dmarc_policy"] == "reject"
    assert rows[5].data["mx"] == "mail.xn--mnchen-3ya.de"
    assert rows[0].data["from_cache"] is False


def test_offline_risk_signals_are_kept_next_to_dns_ones(server: DnsServer) -> None:
    # Given a role account at a parked domain
    server.respond = zone_responder(ZONE)
    # When it is enriched with DNS
    row = email.enrich(["info@parked.com"], dns_sources(server))[0]
    # Then both signals are listed
    assert (row.data["validity"], row.data["reason"]) == ("risky", "role_account;no_mx_implicit_a")


def test_invalid_addresses_are_not_looked_up_and_dns_failures_are_uncharged_errors(server: DnsServer) -> None:
    # Given a resolver that refuses every question
    server.respond = rcode_responder(dns.rcode.REFUSED)
    # When a malformed and a well-formed address are enriched
    bad, good = email.enrich(["not-an-address", "john@acme.de"], dns_sources(server))
    # Then the malformed one is invalid without a question asked for it
    assert (bad.status, bad.error) == ("invalid", "invalid_email")
    assert all(name.endswith("acme.de") for name, _ in server.questions())
    # And the other is an uncharged error with the DNS code, its offline columns kept
    assert (good.status, good.error) == ("error", "dns_error")
    assert good.data["normalized"] == "john@acme.de" and good.data["mx"] is None


def test_domain_dns_is_of_the_registrable_domain_and_cached_across_batches(server: DnsServer) -> None:
    # Given DNS through a cache
    server.respond = zone_responder(ZONE)
    sources = dns_sources(server, MemoryCache())
    # When a URL on a subdomain is enriched, then the bare domain in a second batch
    first = domain.enrich(["https://www.acme.de/about", "acme.de"], sources)
    asked = len(server.asked)
    second = domain.enrich(["ACME.de"], sources)
    # Then the registrable domain's records fill both rows of the first batch from one lookup (five questions)
    assert [r.data["mx"] for r in first] == ["mx.acme.de", "mx.acme.de"]
    assert asked == 5
    # And the second batch came from the cache: no question, marked as cached
    assert len(server.asked) == asked
    assert second[0].data["from_cache"] is True and second[0].data["dmarc_policy"] == "reject"


def test_dns_is_off_unless_enabled_and_then_uses_the_configured_nameserver(server: DnsServer) -> None:
    # Given settings without and with DNS
    server.respond = zone_responder(ZONE)
    off = from_settings(EnrichSettings())
    on = from_settings(
        EnrichSettings(dns_enabled=True, dns_nameservers=f" {server.nameserver} ", dns_timeout_seconds=QUICK_TIMEOUT)
    )
    # When one domain is enriched with each
    without, with_dns = domain.enrich(["acme.de"], off)[0], domain.enrich(["acme.de"], on)[0]
    # Then offline rows carry empty DNS columns, and the configured resolver answered the other
    assert off.dns is None and without.status == "ok" and without.data["dns_exists"] is None
    assert with_dns.data["dns_exists"] is True and with_dns.data["mx"] == "mx.acme.de"
