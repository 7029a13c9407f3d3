"""Domain: bare domains and URLs, IDNA-normalized and split along the Public Suffix List (bundled snapshot, offline).

A row is `invalid` when the value has no host name, is an IP address, breaks DNS/IDNA label rules, or has no
registrable domain under the PSL (single labels like `localhost`, unknown TLDs, a bare suffix like `co.uk`).

With DNS on (`EnrichSettings.dns_enabled`) the DNS columns describe the registrable domain (`www.acme.co.uk/x` ->
`acme.co.uk`), asked once per distinct registrable domain through the answer cache; a lookup that fails after its
retries makes the row `error` with the DNS code (`dns_timeout`, `dns_error`, `dns_bad_response`), not charged.
With RDAP on (`rdap_enabled`) the registration columns come from the registrable domain's registry (through
rdap.org); `registered` is false when the registry does not know the name. RDAP failures are `error` rows too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from functions.enrich._common import EMPTY_VALUE, columns_of, enrich_each, fold_key, invalid, ok
from functions.enrich._hosts import HostError, parse_target, split, to_host, unicode_of
from functions.enrich.online import OFFLINE, Sources, augment
from functions.models import RowResult

INVALID = "invalid_domain"


class DomainResult(BaseModel):
    """The columns of a domain row."""

    domain: str
    domain_unicode: str
    registrable_domain: str
    registrable_domain_unicode: str
    subdomain: str | None
    public_suffix: str
    icann_suffix: str
    is_private_suffix: bool
    is_idn: bool
    scheme: str | None
    port: int | None
    path: str | None
    reason: str | None = None
    # DNS of the registrable domain (functions/providers/dns_resolver.py); empty unless DNS is on.
    dns_exists: bool | None = None
    mx: str | None = None
    mx_null: bool | None = None
    has_a: bool | None = None
    has_aaaa: bool | None = None
    spf: str | None = None
    dmarc: str | None = None
    dmarc_policy: str | None = None
    # RDAP of the registrable domain (functions/providers/rdap.py); empty unless RDAP is on.
    registered: bool | None = None
    registrar: str | None = None
    registered_at: str | None = None
    expires_at: str | None = None
    updated_at: str | None = None
    rdap_status: str | None = None
    from_cache: bool | None = None


COLUMNS: tuple[str, ...] = columns_of(DomainResult)


def _one(raw: str) -> RowResult:
    if not raw.strip():
        return invalid(COLUMNS, EMPTY_VALUE, reason="empty")
    try:
        target = parse_target(raw)
        host = to_host(target.host)
        parts = split(host.ascii)
    except HostError as exc:
        return invalid(COLUMNS, INVALID, reason=str(exc))
    return ok(
        DomainResult(
            domain=host.ascii,
            domain_unicode=host.unicode,
            registrable_domain=parts.registrable,
            registrable_domain_unicode=unicode_of(parts.registrable),
            subdomain=parts.subdomain,
            public_suffix=parts.public_suffix,
            icann_suffix=parts.icann_suffix,
            is_private_suffix=parts.is_private_suffix,
            is_idn=host.is_idn,
            scheme=target.scheme,
            port=target.port,
            path=target.path,
        )
    )


def enrich(values: Sequence[str], sources: Sources = OFFLINE) -> list[RowResult]:
    """Normalize and split each domain or URL; equal values (ignoring case and outer spaces) are computed once."""
    rows = enrich_each(values, COLUMNS, fold_key, _one)
    rows = augment(rows, sources.dns, _registrable)
    return augment(rows, sources.rdap_domain, _registrable)


def _registrable(data: dict[str, Any]) -> str:
    return str(data["registrable_domain"])
