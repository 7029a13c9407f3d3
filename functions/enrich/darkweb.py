"""Darkweb: breach exposure of an email address or a domain; needs an online provider (e.g. Have I Been Pwned).

Offline, each value is checked first: a value that is neither an email address nor a domain is `invalid`
(`invalid_darkweb_query`, not charged). Every other row asks the provider once per distinct query; with no provider
configured it answers `error` / `provider_not_configured` (not charged). The provider is injected through
`enrich_with`; `configured_provider()` is where the online part plugs in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel

from functions.enrich._common import EMPTY_VALUE, Provider, columns_of, invalid, through_provider
from functions.enrich._hosts import HostError, parse_target, split, to_host
from functions.models import RowResult

INVALID = "invalid_darkweb_query"


class DarkwebResult(BaseModel):
    """The columns of a darkweb row."""

    query: str | None
    query_type: str | None
    breached: bool | None
    breach_count: int | None
    breaches: str | None
    latest_breach: str | None
    data_classes: str | None


COLUMNS: tuple[str, ...] = columns_of(DarkwebResult)


def normalize_query(raw: str) -> str | RowResult:
    """The provider query for a value (lower-cased address or registrable domain), or its invalid row."""
    value = raw.strip()
    if not value:
        return invalid(COLUMNS, EMPTY_VALUE)
    if "@" in value:
        try:
            info = validate_email(value, check_deliverability=False)
        except EmailNotValidError:
            return invalid(COLUMNS, INVALID)
        # Breach databases key accounts by their ASCII, case-folded address.
        return (info.ascii_email or info.normalized).lower()
    try:
        return split(to_host(parse_target(value).host).ascii).registrable
    except HostError:
        return invalid(COLUMNS, INVALID)


def query_type(query: str) -> str:
    """Whether a normalized query is an email address or a domain."""
    return "email" if "@" in query else "domain"


def _known_offline(query: str) -> dict[str, Any]:
    return {"query": query, "query_type": query_type(query)}


def configured_provider() -> Provider[DarkwebResult] | None:
    """The breach provider configured for this deployment; none exists offline."""
    return None


def enrich_with(values: Sequence[str], provider: Provider[DarkwebResult] | None) -> list[RowResult]:
    """Validate each value, then ask the provider once per distinct query (error rows when there is none)."""
    return through_provider(values, COLUMNS, normalize_query, provider, _known_offline)


def enrich(values: Sequence[str]) -> list[RowResult]:
    """Breach exposure of each email or domain through the configured provider."""
    return enrich_with(values, configured_provider())
