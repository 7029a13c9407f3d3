"""The SSRF policy shared by webhooks and the website provider: which addresses may be contacted."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from functions.netguard import (
    BlockedTargetError,
    DeadlineSSLSocket,
    PinnedHTTPSConnection,
    is_allowed,
    resolve_public,
    resolve_webhook_target,
)

PUBLIC = ["8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8"]
PRIVATE = ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.0.1", "100.64.0.1", "::1", "fd12:3456::1", "::ffff:10.0.0.1"]
NEVER = [
    "169.254.169.254",  # AWS, GCP and Azure instance metadata
    "169.254.0.1",
    "fe80::1",
    "fe80::1%eth0",
    "::ffff:169.254.169.254",  # the same, written as IPv6
    "64:ff9b::a9fe:a9fe",  # the same, through NAT64
    "fd00:ec2::254",  # AWS metadata over IPv6
    "100.100.100.200",  # Alibaba Cloud metadata
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "ff02::1",
]


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed_always(address: str) -> None:
    # Given a globally routable address, when judged under either policy, then it is allowed
    assert is_allowed(address, allow_private=False)
    assert is_allowed(address, allow_private=True)


@pytest.mark.parametrize("address", PRIVATE)
def test_private_and_loopback_addresses_only_when_allowed(address: str) -> None:
    # Given a private or loopback address, when judged, then only the local-development policy allows it
    assert not is_allowed(address, allow_private=False)
    assert is_allowed(address, allow_private=True)


@pytest.mark.parametrize("address", NEVER)
def test_link_local_metadata_and_unroutable_addresses_never(address: str) -> None:
    # Given a link-local, metadata, unspecified or multicast address, when judged, then no policy allows it
    assert not is_allowed(address, allow_private=False)
    assert not is_allowed(address, allow_private=True)


def test_resolve_public_returns_the_checked_address_or_refuses() -> None:
    # Given the loopback name, when resolved under both policies
    address = resolve_public("127.0.0.1", 80, allow_private=True)
    # Then the local policy returns the address and the production policy refuses with the old message
    assert address == "127.0.0.1"
    with pytest.raises(BlockedTargetError, match="does not resolve to a public address"):
        resolve_public("127.0.0.1", 80, allow_private=False)
    # And the metadata address is refused even locally
    with pytest.raises(BlockedTargetError):
        resolve_public("169.254.169.254", 80, allow_private=True)


# --- webhook targets -------------------------------------------------------------------------------------------------


def fake_dns(table: dict[str, list[str]]) -> Callable[..., list[Any]]:
    """getaddrinfo answering from a table (no network in unit tests)."""

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in table[host]]

    return getaddrinfo


DNS = fake_dns(
    {
        "hooks.example.com": ["93.184.215.14"],
        "internal.example.com": ["10.0.0.7"],
        "rebind.example.com": ["127.0.0.1"],
        "localhost": ["127.0.0.1"],
        "127.0.0.1": ["127.0.0.1"],
        "::1": ["::1"],
        "10.0.0.1": ["10.0.0.1"],
        "169.254.169.254": ["169.254.169.254"],
        "93.184.215.14": ["93.184.215.14"],
    }
)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1"])
def test_locally_the_three_canonical_loopback_hosts_are_allowed(host: str) -> None:
    # Given a local run, when a canonical loopback host is checked, then it resolves to loopback
    assert resolve_webhook_target(host, 8080, allow_loopback=True, getaddrinfo=DNS) in ("127.0.0.1", "::1")


@pytest.mark.parametrize(
    "host",
    [
        "2130706433",  # 127.0.0.1 as one decimal number
        "0x7f000001",  # ... as hex
        "127.1",  # ... shortened
        "0177.0.0.1",  # ... octal
        "0:0:0:0:0:0:0:1",  # ::1 spelled out
        "10.0.0.1",  # private
        "internal.example.com",  # a name resolving to a private address
        "rebind.example.com",  # a public-looking name resolving to loopback
        "169.254.169.254",  # instance metadata
    ],
)
def test_locally_anything_else_private_is_refused(host: str) -> None:
    # Given a local run, when another private or non-canonical host is checked, then it is refused
    with pytest.raises(BlockedTargetError):
        resolve_webhook_target(host, 8080, allow_loopback=True, getaddrinfo=DNS)


@pytest.mark.parametrize(
    "host",
    ["169.254.169.254", "10.0.0.1", "2130706433", "127.0.0.1", "localhost", "internal.example.com", "0x7f000001"],
)
def test_deployed_private_link_local_and_numeric_hosts_are_refused(host: str) -> None:
    # Given the deployed rules, when a private, link-local or decimal-IP host is checked, then it is refused
    with pytest.raises(BlockedTargetError):
        resolve_webhook_target(host, 443, allow_loopback=False, getaddrinfo=DNS)


@pytest.mark.parametrize("host", ["hooks.example.com", "93.184.215.14"])
def test_public_hosts_are_allowed_under_both_rules(host: str) -> None:
    for allow_loopback in (False, True):
        assert resolve_webhook_target(host, 443, allow_loopback, getaddrinfo=DNS) == "93.184.215.14"


def test_a_name_that_does_not_resolve_is_an_os_error() -> None:
    with pytest.raises(OSError):
        resolve_webhook_target("nowhere.example.com", 443, allow_loopback=False, getaddrinfo=DNS)


def _self_signed(tmp_path: Any) -> tuple[str, str]:
    """A certificate and key for `localhost` (files under tmp_path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


def test_a_tls_server_that_trickles_its_body_is_cut_off_at_the_connections_deadline(tmp_path: Any) -> None:
    # Given a TLS server that answers at once, then sends its body a byte every 0.2 s (never idle for 30 s)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(*_self_signed(tmp_path))
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with server_context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(4096)
            tls.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
            try:
                for _ in range(100):
                    tls.sendall(b"x")
                    time.sleep(0.2)
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    # (the test's certificate is self-signed: a client context that does not verify it, with the deadline sockets)
    client = ssl.create_default_context()
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    client.sslsocket_class = DeadlineSSLSocket
    started = time.monotonic()
    conn = PinnedHTTPSConnection(
        "localhost", "127.0.0.1", listener.getsockname()[1], 30, context=client, deadline=started + 1.0
    )
    # When its body is read
    conn.request("GET", "/")
    response = conn.getresponse()
    with pytest.raises(TimeoutError):
        while response.read(1024):
            pass
    # Then the read ends at the connection's deadline, not after the 30 s a single read may wait
    assert 0.9 < time.monotonic() - started < 2.0
    conn.close()
    listener.close()
