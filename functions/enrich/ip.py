"""IP: address facts from the standard library, country and network owner from geoip2fast's bundled data (offline).

Accepts IPv4 and IPv6, with an IPv6 zone id (`fe80::1%eth0`), in brackets, or with a port (`[2001:db8::1]:443`,
`203.0.113.9:8080`). A row is `invalid` for anything else, networks (`10.0.0.0/8`) and IPv4 with leading zeros
(`010.1.1.1`, ambiguous octal) included. Geolocation comes from geoip2fast's bundled MaxMind GeoLite2 country+ASN
snapshot (IPv4 and IPv6) and is given for globally routable addresses only; an IPv4-mapped IPv6 address
(`::ffff:8.8.8.8`) is located as its IPv4 address. The data names the AS's organization, not its number, so
`as_name` and `as_network` are given and there is no AS number column.

With RDAP on (`EnrichSettings.rdap_enabled`) a globally routable address also gets its network's registration from
its RIR (through rdap.org): name, handle, range, CIDR, country, type, owner, dates. Private, loopback and other
special addresses are not asked (no registry has them). A failed lookup makes the row `error` (`rdap_not_found`,
`provider_timeout`, ...), not charged.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import threading
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from functions.enrich._common import EMPTY_VALUE, columns_of, enrich_each, invalid, ok, strip_key
from functions.enrich.online import OFFLINE, Sources, augment
from functions.models import RowResult

INVALID = "invalid_ip"
# Country + ASN for IPv4 and IPv6: the largest of the four bundled files (~120 MB resident once loaded, ~0.35 s).
GEO_DATA_FILE = "geoip2fast-asn-ipv6.dat.gz"

_BRACKETED = re.compile(r"^\[([^\]]+)\](?::\d{1,5})?$")
_IPV4_WITH_PORT = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$")
_IPV4_LEADING_ZERO = re.compile(r"^(?:\d{1,3}\.){0,3}0\d")
_NOT_FOUND = ("", "--")


class IpResult(BaseModel):
    """The columns of an IP row."""

    version: int | None
    normalized: str | None
    zone_id: str | None
    ipv4_mapped: str | None
    is_global: bool | None
    is_private: bool | None
    is_loopback: bool | None
    is_reserved: bool | None
    is_multicast: bool | None
    is_link_local: bool | None
    is_unspecified: bool | None
    reverse_pointer: str | None
    country_code: str | None
    country_name: str | None
    network: str | None
    as_name: str | None
    as_network: str | None
    reason: str | None
    # RDAP of the address's network (functions/providers/rdap.py), globally routable addresses only; empty unless on.
    network_name: str | None = None
    network_handle: str | None = None
    network_range: str | None = None
    network_cidr: str | None = None
    network_country: str | None = None
    network_type: str | None = None
    network_owner: str | None = None
    network_registered_at: str | None = None
    network_updated_at: str | None = None
    from_cache: bool | None = None


COLUMNS: tuple[str, ...] = columns_of(IpResult)


_GEO_LOCK = threading.Lock()


@functools.cache
def _load_geo() -> Any:
    # geoip2fast keeps its tables in module globals: one instance per process. An absolute path, because it looks in
    # the working directory first.
    import geoip2fast

    path = os.path.join(os.path.dirname(geoip2fast.__file__), GEO_DATA_FILE)
    return geoip2fast.GeoIP2Fast(geoip2fast_data_file=path)


def _geo() -> Any:
    # The lock keeps concurrent first calls (threads of the local runtime) from loading ~120 MB twice.
    with _GEO_LOCK:
        return _load_geo()


def _locate(address: str) -> dict[str, str | None]:
    found = _geo().lookup(address)
    if found.country_code in _NOT_FOUND or found.is_private:
        return {}
    return {
        "country_code": found.country_code,
        "country_name": found.country_name or None,
        "network": found.cidr or None,
        "as_name": found.asn_name or None,
        "as_network": found.asn_cidr or None,
    }


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    bracketed = _BRACKETED.match(value)
    if bracketed:
        value = bracketed.group(1)
    else:
        with_port = _IPV4_WITH_PORT.match(value)
        if with_port:
            value = with_port.group(1)
    return ipaddress.ip_address(value)


def _why_not(value: str) -> str:
    if "/" in value:
        return "a network (CIDR), not a single address"
    if _IPV4_LEADING_ZERO.match(value):
        return "IPv4 with leading zeros is ambiguous (octal or decimal)"
    return "not an IPv4 or IPv6 address"


def _one(raw: str) -> RowResult:
    value = raw.strip()
    if not value:
        return invalid(COLUMNS, EMPTY_VALUE, reason="empty")
    try:
        parsed = _parse(value)
    except ValueError:
        return invalid(COLUMNS, INVALID, reason=_why_not(value))
    zone_id: str | None = None
    address = parsed
    mapped: ipaddress.IPv4Address | None = None
    if isinstance(parsed, ipaddress.IPv6Address):
        zone_id = parsed.scope_id
        # Python 3.11's reverse_pointer fails on a scoped address; the zone is local to a host anyway.
        address = ipaddress.IPv6Address(int(parsed)) if zone_id else parsed
        mapped = parsed.ipv4_mapped
    normalized = f"::ffff:{mapped}" if mapped else address.compressed
    # An IPv4-mapped address reaches the IPv4 host, so it is classified and located as that host (as Python 3.13 does).
    host = mapped or address
    geo = _locate(str(host)) if host.is_global else {}
    return ok(
        IpResult(
            version=address.version,
            normalized=normalized,
            zone_id=zone_id,
            ipv4_mapped=str(mapped) if mapped else None,
            is_global=host.is_global,
            is_private=host.is_private,
            is_loopback=host.is_loopback,
            is_reserved=host.is_reserved,
            is_multicast=host.is_multicast,
            is_link_local=host.is_link_local,
            is_unspecified=host.is_unspecified,
            reverse_pointer=address.reverse_pointer,
            country_code=geo.get("country_code"),
            country_name=geo.get("country_name"),
            network=geo.get("network"),
            as_name=geo.get("as_name"),
            as_network=geo.get("as_network"),
            reason=None,
        )
    )


def enrich(values: Sequence[str], sources: Sources = OFFLINE) -> list[RowResult]:
    """Classify and locate each address; equal values (ignoring outer spaces) are computed once."""
    rows = enrich_each(values, COLUMNS, strip_key, _one)
    return augment(rows, sources.rdap_ip, _registry_query)


def _registry_query(data: dict[str, Any]) -> str | None:
    # Only globally routable addresses are in a registry; an IPv4-mapped address is asked as its IPv4 address.
    if not data.get("is_global"):
        return None
    return str(data.get("ipv4_mapped") or data["normalized"])
