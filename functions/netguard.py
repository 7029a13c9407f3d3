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
import time
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


class _Deadline:
    """A whole-exchange deadline on a socket: before every read and write the socket's timeout becomes the time left
    (at most `idle_timeout`). urllib3's and http.client's timeouts bound each operation, not their sum, so a server
    that sends a byte (or a header line) every few seconds would otherwise hold a connection for as long as it likes.
    """

    deadline: float | None = None
    idle_timeout: float | None = None

    def _arm(self) -> None:
        if self.deadline is None:
            return
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the exchange's time is up")
        sock: Any = self
        sock.settimeout(left if self.idle_timeout is None else min(self.idle_timeout, left))


class DeadlineSocket(_Deadline, socket.socket):
    """A TCP socket whose every read and write ends by its deadline (see `_Deadline`)."""

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """Read, within the time left."""
        self._arm()
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Read, within the time left."""
        self._arm()
        return super().recv(bufsize, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Write, within the time left."""
        self._arm()
        super().sendall(data, flags)


class DeadlineSSLSocket(_Deadline, ssl.SSLSocket):
    """A TLS socket whose every read and write ends by its deadline (the handshake by the timeout set before it)."""

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        """Read, within the time left."""
        self._arm()
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        """Read, within the time left."""
        self._arm()
        return super().recv(buflen, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Write, within the time left."""
        self._arm()
        super().sendall(data, flags)


@functools.cache
def _deadline_tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.sslsocket_class = DeadlineSSLSocket
    return context


def _connect(address: str, port: int, timeout: float, deadline: float | None) -> socket.socket:
    """A TCP connection to exactly `address`; with a deadline, one whose every operation ends by it."""
    if deadline is None:
        return socket.create_connection((address, port), timeout)
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the exchange's time is up")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = DeadlineSocket(family, socket.SOCK_STREAM)
    sock.deadline, sock.idle_timeout = deadline, timeout
    try:
        sock.settimeout(min(timeout, left))
        sock.connect((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP to a checked IP address; the Host header still names the original host.

    `timeout` bounds each operation; `deadline` (a time.monotonic() value), when given, bounds all of them together:
    the connect, the request, the status line and headers, and every read of the body.
    """

    def __init__(self, host: str, address: str, port: int, timeout: float, deadline: float | None = None) -> None:
        super().__init__(host, port, timeout=timeout)
        self.pinned_address = address
        self.op_timeout = timeout
        self.deadline = deadline

    def connect(self) -> None:
        """Connect to the pinned address, never to a fresh resolution of the host name."""
        self.sock = _connect(self.pinned_address, self.port, self.op_timeout, self.deadline)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked IP address, with SNI and certificate checks for the original host name (and `deadline` as
    for PinnedHTTPConnection; the TLS handshake is bounded by the time left when it starts)."""

    def __init__(
        self,
        host: str,
        address: str,
        port: int,
        timeout: float,
        context: ssl.SSLContext | None = None,
        deadline: float | None = None,
    ) -> None:
        default = _deadline_tls_context() if deadline is not None else _tls_context()
        super().__init__(host, port, timeout=timeout, context=context or default)
        self.pinned_address = address
        self.op_timeout = timeout
        self.deadline = deadline

    def connect(self) -> None:
        """Connect to the pinned address and verify the certificate against the host name."""
        sock = _connect(self.pinned_address, self.port, self.op_timeout, self.deadline)
        try:
            if self.deadline is not None:
                sock.settimeout(max(0.001, min(self.op_timeout, self.deadline - time.monotonic())))
            tls = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]
        except BaseException:
            sock.close()
            raise
        if isinstance(tls, _Deadline):
            tls.deadline, tls.idle_timeout = self.deadline, self.op_timeout
        self.sock = tls
