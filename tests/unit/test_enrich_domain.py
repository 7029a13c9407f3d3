"""Domain enrichment: bare domains and URLs, IDNA, Public Suffix List split from the bundled snapshot."""

from __future__ import annotations

import pytest

from functions.enrich import domain


def one(value: str) -> tuple[str, str | None, dict[str, object]]:
    result = domain.enrich([value])[0]
    return result.status, result.error, result.data


def test_idn_domain_is_punycoded_and_keeps_its_unicode_form() -> None:
    # Given a German IDN with an upper-case first letter
    status, _, data = one("München.de")
    # Then the ASCII form is the IDNA one and the Unicode form is kept
    assert status == "ok"
    assert data["domain"] == "xn--mnchen-3ya.de"
    assert data["domain_unicode"] == "münchen.de"
    assert data["registrable_domain"] == "xn--mnchen-3ya.de"
    assert data["registrable_domain_unicode"] == "münchen.de"
    assert data["is_idn"] is True
    assert data["public_suffix"] == "de"


def test_punycode_input_gives_the_same_result() -> None:
    # Given the same domain already in punycode
    status, _, data = one("xn--mnchen-3ya.de")
    # Then it decodes to the same Unicode name
    assert status == "ok"
    assert data["domain_unicode"] == "münchen.de"


def test_cyrillic_domain_with_idn_tld_and_path() -> None:
    # Given a URL-ish value on the .рф TLD
    _, _, data = one("www.пример.рф/путь")
    # Then the IDN suffix is recognized and the path kept
    assert data["domain"] == "www.xn--e1afmkfd.xn--p1ai"
    assert data["registrable_domain_unicode"] == "пример.рф"
    assert data["subdomain"] == "www"
    assert data["path"] == "/путь"


def test_url_with_credentials_port_path_query_and_fragment() -> None:
    # Given a full URL
    status, _, data = one("https://user:pw@Shop.Example.co.uk:8443/path/to?q=1#top")
    # Then the host is split along the multi-label suffix and the URL parts are reported
    assert status == "ok"
    assert data["domain"] == "shop.example.co.uk"
    assert data["registrable_domain"] == "example.co.uk"
    assert data["subdomain"] == "shop"
    assert data["public_suffix"] == "co.uk"
    assert (data["scheme"], data["port"], data["path"]) == ("https", 8443, "/path/to")


def test_host_with_port_and_no_scheme() -> None:
    # Given a host:port/path without scheme
    _, _, data = one("api.github.com:443/repos")
    # Then it is read as a URL without scheme
    assert (data["domain"], data["port"], data["path"], data["scheme"]) == ("api.github.com", 443, "/repos", None)
    assert data["registrable_domain"] == "github.com"


def test_private_suffix_is_flagged() -> None:
    # Given a blog on a PSL private suffix
    _, _, data = one("waiterrant.blogspot.com")
    # Then the blog is the registrable domain and the suffix is marked private
    assert data["registrable_domain"] == "waiterrant.blogspot.com"
    assert data["public_suffix"] == "blogspot.com"
    assert data["icann_suffix"] == "com"
    assert data["is_private_suffix"] is True


def test_host_that_is_itself_a_private_suffix_falls_back_to_icann() -> None:
    # Given a service endpoint listed as a private suffix
    _, _, data = one("s3.amazonaws.com")
    # Then its ICANN registrable domain is shown
    assert (data["registrable_domain"], data["subdomain"], data["is_private_suffix"]) == ("amazonaws.com", "s3", False)


def test_plain_ascii_names_dns_allows() -> None:
    # Given upper case, spaces, a trailing dot and a label with '--' in positions 3-4 (fine in DNS)
    results = domain.enrich(["  EXAMPLE.com. ", "r3--sn-abc.googlevideo.com"])
    # Then both are accepted and lower-cased
    assert [r.data["domain"] for r in results] == ["example.com", "r3--sn-abc.googlevideo.com"]
    assert results[0].data["scheme"] is None and results[0].data["path"] is None


@pytest.mark.parametrize(
    ("value", "error", "reason_part"),
    [
        ("", "empty_value", "empty"),
        ("  \t", "empty_value", "empty"),
        ("not a domain", "invalid_domain", "invalid label"),
        ("localhost", "invalid_domain", "unknown top-level domain"),
        ("server.internal", "invalid_domain", "unknown top-level domain"),
        ("co.uk", "invalid_domain", "public suffix"),
        ("192.168.0.1", "invalid_domain", "IP address"),
        ("http://[2001:db8::1]:8080/", "invalid_domain", "IP address"),
        ("http://", "invalid_domain", "no host"),
        ("example.com:99999", "invalid_domain", "Port out of range"),
        ("a..b.com", "invalid_domain", "invalid label"),
        ("-bad-.com", "invalid_domain", "invalid label"),
        ("☃.net", "invalid_domain", "internationalized"),
        ("xn--zz.com", "invalid_domain", "IDNA"),
    ],
)
def test_values_without_a_registrable_domain_are_invalid(value: str, error: str, reason_part: str) -> None:
    # Given a value that is not a usable domain
    status, err, data = one(value)
    # Then it is invalid with a readable reason, and every column is present
    assert (status, err) == ("invalid", error)
    assert reason_part in str(data["reason"])
    assert tuple(data) == domain.COLUMNS


def test_order_kept_and_duplicates_computed_once() -> None:
    # Given repeats differing in case and spaces
    results = domain.enrich(["Example.com", "bad value", " example.COM"])
    # Then one result per input in order, the repeat shared
    assert [r.status for r in results] == ["ok", "invalid", "ok"]
    assert results[0] is results[2]
