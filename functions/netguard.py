"""Outbound HTTP to hosts a user named (webhook URLs, company websites) without server-side request forgery.

`resolve_public` resolves a host once and returns an address that may be contacted; `PinnedHTTPConnection` and
`PinnedHTTPSConnection` then connect to exactly that address while speaking to the original host name (Host header,
TLS SNI and certificate check). There is no second lookup a hostile DNS server could answer differently
(DNS rebinding).

Which addresses may be contacted:

- always refused, even with `allow_private`: link-local 169.254.0.0/16 and fe80::/10 (where cloud metadata lives:
  169.254.169.254 on AWS, GCP and Azure; fd00:ec2::254 and 100.100.100.200 are refused too), unspecified
  (0.0.0.0, ::) and multicast addresses;
- `allow_private=False` (production): only globally routable addresses (`ipaddress` `is_global`);
- `allow_private=True` (local runs and tests): also loopback, private (RFC 1918, fc00::/7), shared and reserved.

IPv4 addresses written as IPv6 (::ffff:a.b.c.d, and 64:ff9b::/96 NAT64) are judged as the IPv4 address they carry.

Webhook targets (`resolve_webhook_target`) are stricter than `allow_private`: a host written as a number in any
form but the canonical one (`2130706433`, `0x7f000001`, `127.1`, `0177.0.0.1`) is refused, and the only non-public
targets a local run may reach are the canonical loopback hosts `localhost`, `127.0.0.1` and `[::1]`.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Metadata endpoints outside the link-local ranges: AWS IMDS over IPv6 and Alibaba Cloud.
_METADATA = frozenset({ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")})


# The host names (as urlsplit gives them: lower case, IPv6 without brackets) a local run may send webhooks to.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class BlockedTargetError(ValueError):
    """A host that resolves to no address we may contact."""


def _as_judged(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def is_allowed(address: str, allow_private: bool) -> bool:
    """Whether an IP address may be contacted under the policy above (a zone suffix like %eth0 is ignored)."""
    ip = _as_judged(ipaddress.ip_address(address.split("%")[0]))
    if ip.is_link_local or ip.is_unspecified or ip.is_multicast or ip in _METADATA:
        return False
    return allow_private or ip.is_global


def resolve_public(host: str, port: int, allow_private: bool) -> str:
    """Resolve once and return the first allowed address; connect to it and nothing else (no DNS rebinding).

    Raises BlockedTargetError when no address is allowed, OSError (socket.gaierror) when the name does not resolve.
    """
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    for info in infos:
        address = str(info[4][0])
        if is_allowed(address, allow_private):
            return address
    raise BlockedTargetError(f"{host} does not resolve to a public address")


def _numeric_host(host: str) -> IPAddress | None:
    """The address a host written as an IP address names; raises for a non-canonical spelling of one."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:
            socket.inet_aton(host)  # what getaddrinfo also accepts: 127.1, 2130706433, 0x7f000001, 0177.0.0.1
        except OSError:
            return None  # a name
        raise BlockedTargetError(f"{host} is an IP address written in a non-canonical form") from None
    if str(ip) != host.lower():
        raise BlockedTargetError(f"{host} is an IP address written in a non-canonical form (write {ip})")
    return ip


def is_allowed_webhook_address(address: str, host: str, allow_loopback: bool) -> bool:
    """Whether a webhook for `host` may be sent to `address`: public, or loopback for a canonical loopback host."""
    ip = _as_judged(ipaddress.ip_address(address.split("%")[0]))
    if ip.is_link_local or ip.is_unspecified or ip.is_multicast or ip in _METADATA:
        return False
    if ip.is_global:
        return True
    return allow_loopback and host in LOOPBACK_HOSTS and ip.is_loopback


def resolve_webhook_target(
    host: str, port: int, allow_loopback: bool, getaddrinfo: Callable[..., list[Any]] = socket.getaddrinfo
) -> str:
    """Check a webhook host and resolve it once; the address to connect to (and nothing else).

    Raises BlockedTargetError for a host that may not receive webhooks, OSError when the name does not resolve.
    """
    _numeric_host(host)
    for info in getaddrinfo(host, port, proto=socket.IPPROTO_TCP):
        address = str(info[4][0])
        if is_allowed_webhook_address(address, host, allow_loopback):
            return address
    raise BlockedTargetError(f"{host} does not resolve to a public address")


def is_public(address: str) -> bool:
    """A globally routable address (what anyone on the internet could reach too)."""
    return _as_judged(ipaddress.ip_address(address.split("%")[0])).is_global


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle costs milliseconds; one context serves every connection (it is thread-safe).
    return ssl.create_default_context()


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP to a checked IP address; the Host header still names the original host."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.pinned_address = address

    def connect(self) -> None:
        """Connect to the pinned address, never to a fresh resolution of the host name."""
        self.sock = socket.create_connection((self.pinned_address, self.port), self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked IP address, with SNI and certificate checks for the original host name."""

    def __init__(
        self, host: str, address: str, port: int, timeout: float, context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context or _tls_context())
        self.pinned_address = address

    def connect(self) -> None:
        """Connect to the pinned address and verify the certificate against the host name."""
        sock = socket.create_connection((self.pinned_address, self.port), self.timeout)
        try:
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]
        except BaseException:
            sock.close()
            raise
