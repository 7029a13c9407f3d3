"""IP enrichment: address facts from ipaddress, country and network owner from geoip2fast's bundled data."""

from __future__ import annotations

import pytest

from functions.enrich import ip


def one(value: str) -> tuple[str, str | None, dict[str, object]]:
    result = ip.enrich([value])[0]
    return result.status, result.error, result.data


def test_public_ipv4_is_located_with_its_network_owner() -> None:
    # Given Google's public resolver
    status, _, data = one("8.8.8.8")
    # Then it is global, in the US, owned by Google's AS
    assert status == "ok"
    assert (data["version"], data["normalized"]) == (4, "8.8.8.8")
    assert data["is_global"] is True and data["is_private"] is False
    assert (data["country_code"], data["country_name"]) == ("US", "United States")
    assert data["as_name"] == "GOOGLE"
    assert data["as_network"] == "8.8.8.0/24"
    assert data["network"] == "8.8.0.0/15"
    assert data["reverse_pointer"] == "8.8.8.8.in-addr.arpa"


def test_public_ipv6_is_located() -> None:
    # Given Cloudflare's IPv6 resolver in brackets with a port, as in a URL
    status, _, data = one("[2606:4700:4700::1111]:443")
    # Then the brackets and port are dropped and the address located
    assert status == "ok"
    assert (data["version"], data["normalized"]) == (6, "2606:4700:4700::1111")
    assert data["country_code"] == "US"
    assert data["as_name"] == "CLOUDFLARENET"
    assert str(data["reverse_pointer"]).endswith(".6.2.ip6.arpa")


def test_ipv4_with_port_and_spaces() -> None:
    # Given an address copied from a log line with a port
    _, _, data = one(" 81.2.69.160:8080 ")
    # Then the port is dropped and the UK ISP found
    assert data["normalized"] == "81.2.69.160"
    assert data["country_code"] == "GB"


def test_link_local_ipv6_with_zone_id() -> None:
    # Given a link-local address with an interface zone
    status, _, data = one("fe80::1%eth0")
    # Then the zone is its own column, the address is link-local and not located
    assert status == "ok"
    assert (data["normalized"], data["zone_id"]) == ("fe80::1", "eth0")
    assert data["is_link_local"] is True
    assert data["is_global"] is False
    assert data["country_code"] is None
    assert data["reverse_pointer"] == "1." + "0." * 28 + "8.e.f.ip6.arpa"


def test_private_loopback_multicast_and_unspecified_are_classified_not_located() -> None:
    # Given special-purpose addresses
    private, loopback, multicast, unspecified, documentation = ip.enrich(
        ["10.0.0.1", "::1", "ff02::1", "0.0.0.0", "2001:db8::1"]
    )
    # Then each flag is right and none gets a country
    assert private.data["is_private"] is True
    assert loopback.data["is_loopback"] is True
    assert multicast.data["is_multicast"] is True
    assert unspecified.data["is_unspecified"] is True
    assert documentation.data["is_global"] is False
    assert all(r.data["country_code"] is None for r in (private, loopback, multicast, unspecified, documentation))


def test_ipv4_mapped_ipv6_is_classified_and_located_as_ipv4() -> None:
    # Given an IPv4-mapped IPv6 address
    _, _, data = one("::ffff:8.8.8.8")
    # Then it keeps version 6, shows the mapped IPv4, and is located as 8.8.8.8
    assert (data["version"], data["normalized"], data["ipv4_mapped"]) == (6, "::ffff:8.8.8.8", "8.8.8.8")
    assert data["is_global"] is True and data["is_reserved"] is False
    assert data["country_code"] == "US"


def test_ipv6_is_normalized_to_compressed_lower_case() -> None:
    # Given an exploded upper-case IPv6 address
    _, _, data = one("2A00:1450:4001:082B:0000:0000:0000:200E")
    # Then it is compressed and lower-cased
    assert data["normalized"] == "2a00:1450:4001:82b::200e"
    assert data["country_code"] == "DE"


@pytest.mark.parametrize(
    ("value", "error", "reason_part"),
    [
        ("", "empty_value", "empty"),
        ("   ", "empty_value", "empty"),
        ("garbage", "invalid_ip", "not an IPv4 or IPv6"),
        ("256.1.1.1", "invalid_ip", "not an IPv4 or IPv6"),
        ("1.2.3", "invalid_ip", "not an IPv4 or IPv6"),
        ("010.1.1.1", "invalid_ip", "leading zeros"),
        ("10.0.0.0/8", "invalid_ip", "network"),
        ("fe80::1%", "invalid_ip", "not an IPv4 or IPv6"),
        ("example.com", "invalid_ip", "not an IPv4 or IPv6"),
    ],
)
def test_non_addresses_are_invalid(value: str, error: str, reason_part: str) -> None:
    # Given a value that is not one IP address
    status, err, data = one(value)
    # Then it is invalid with a reason and every column present
    assert (status, err) == ("invalid", error)
    assert reason_part in str(data["reason"])
    assert tuple(data) == ip.COLUMNS


def test_order_kept_and_duplicates_computed_once() -> None:
    # Given repeats with spaces
    results = ip.enrich(["1.1.1.1", "nope", " 1.1.1.1"])
    # Then one result per input in order, the repeat shared
    assert [r.status for r in results] == ["ok", "invalid", "ok"]
    assert results[0] is results[2]
    assert results[0].data["country_code"] == "AU"
