"""The SSRF policy shared by webhooks and the website provider: which addresses may be contacted."""

from __future__ import annotations

import pytest

from functions.netguard import BlockedTargetError, is_allowed, resolve_public

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
