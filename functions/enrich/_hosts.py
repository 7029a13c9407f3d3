"""Host names shared by the domain, email and company types: URL parsing, IDNA, and the Public Suffix List split."""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import idna

if TYPE_CHECKING:
    from tldextract import TLDExtract

_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*://", re.IGNORECASE)
# DNS allows "--" in the 3rd/4th position of plain ASCII labels (e.g. r3--sn-abc.googlevideo.com), IDNA 2008 does not,
# so ASCII names are checked as LDH labels and only non-ASCII or xn-- labels go through the IDNA codec.
_LDH_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_MAX_NAME = 253


class HostError(ValueError):
    """A value that is not a usable host name; the message is the reason shown to the user."""


@dataclass(frozen=True)
class Target:
    """What a domain or URL input points at."""

    host: str
    scheme: str | None
    port: int | None
    path: str | None


@dataclass(frozen=True)
class Host:
    """A host name in its ASCII (IDNA) and Unicode forms."""

    ascii: str
    unicode: str

    @property
    def is_idn(self) -> bool:
        """Whether any label is internationalized."""
        return self.ascii != self.unicode or "xn--" in self.ascii


@dataclass(frozen=True)
class Split:
    """A host cut along the Public Suffix List."""

    subdomain: str | None
    label: str
    public_suffix: str
    icann_suffix: str
    is_private_suffix: bool
    registrable: str


def parse_target(raw: str) -> Target:
    """The host, scheme, port and path of a bare domain or a URL; HostError when there is no host."""
    text = raw.strip()
    if not text:
        raise HostError("empty")
    has_scheme = bool(_SCHEME.match(text))
    try:
        parts = urlsplit(text if has_scheme else "//" + text)
        host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:
        raise HostError(f"not a URL or domain: {exc}") from exc
    if not host:
        raise HostError("no host name")
    path = parts.path if parts.path not in ("", "/") else None
    return Target(host=host, scheme=parts.scheme.lower() if has_scheme else None, port=port, path=path)


def to_host(name: str) -> Host:
    """Validate a host name and give its IDNA ASCII and Unicode forms; HostError with the reason otherwise."""
    name = name.strip()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise HostError("empty")
    if is_ip_address(name):
        raise HostError("an IP address, not a domain name")
    if name.isascii():
        ascii_name = name.lower()
        for label in ascii_name.split("."):
            if not _LDH_LABEL.match(label):
                raise HostError(f"invalid label {label!r}")
        unicode_name = _decode(ascii_name) if "xn--" in ascii_name else ascii_name
    else:
        try:
            ascii_name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise HostError(f"not a valid internationalized name: {exc}") from exc
        unicode_name = _decode(ascii_name)
    if len(ascii_name) > _MAX_NAME:
        raise HostError("longer than 253 characters")
    return Host(ascii=ascii_name, unicode=unicode_name)


def _decode(ascii_name: str) -> str:
    try:
        return idna.decode(ascii_name)
    except (idna.IDNAError, UnicodeError) as exc:
        raise HostError(f"invalid IDNA label: {exc}") from exc


def is_ip_address(name: str) -> bool:
    """Whether a name is an IPv4 or IPv6 address literal."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@functools.cache
def _extractor() -> TLDExtract:
    # Built once per process; the bundled PSL snapshot only: no fetch at run time and no disk cache (Lambda's
    # file system is read-only outside /tmp, and a fetch would hang offline).
    from tldextract import TLDExtract

    return TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True, include_psl_private_domains=True)


def split(ascii_host: str) -> Split:
    """The PSL split of a validated ASCII host; HostError when it has no registrable domain."""
    found = _extractor()(ascii_host)
    if found.suffix and not found.domain and found.is_private:
        # The host is itself a private suffix (s3.amazonaws.com): fall back to the ICANN view of it.
        found = _extractor()(ascii_host, include_psl_private_domains=False)
    if not found.suffix:
        raise HostError("unknown top-level domain")
    if not found.domain:
        raise HostError("a public suffix, not a registrable domain")
    return Split(
        subdomain=found.subdomain or None,
        label=found.domain,
        public_suffix=found.suffix,
        icann_suffix=found.registry_suffix,
        is_private_suffix=found.is_private,
        registrable=found.top_domain_under_public_suffix,
    )


def unicode_of(ascii_name: str) -> str:
    """The Unicode form of an already validated ASCII host name."""
    return _decode(ascii_name) if "xn--" in ascii_name else ascii_name


def name_from_label(label: str) -> str:
    """A display name guessed from a domain's registrable label: acme-corp -> Acme Corp, ibm -> IBM."""
    words = [w for w in re.split(r"[-_]+", unicode_of(label)) if w]
    # Short all-letter names are usually initialisms (ibm.com, bmw.de).
    if len(words) == 1 and len(words[0]) <= 3 and words[0].isalpha():
        return words[0].upper()
    return " ".join(w[:1].upper() + w[1:] for w in words)


# Two-letter TLDs sold worldwide as generic names (.io, .ai, .co ...) say nothing about where a company is.
_GENERIC_CCTLDS = frozenset(
    {"ac", "ai", "cc", "co", "eu", "fm", "gg", "io", "la", "ly", "me", "sh", "so", "to", "tv", "ws"}
)
_CCTLD_TO_ISO = {"uk": "GB"}


def cctld_country(icann_suffix: str) -> str | None:
    """The ISO 3166 alpha-2 country of a suffix's country-code TLD (co.uk -> GB), None for generic ones."""
    tld = icann_suffix.rsplit(".", 1)[-1]
    if len(tld) != 2 or not tld.isalpha() or tld in _GENERIC_CCTLDS:
        return None
    return _CCTLD_TO_ISO.get(tld, tld.upper())
