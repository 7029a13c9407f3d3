"""Darkweb: breach exposure of an email address or a domain; needs an online provider (e.g. Have I Been Pwned).

Offline, each value is checked first: a value that is neither an email address nor a domain is `invalid`
(`invalid_darkweb_query`, not charged). Every other row asks the provider once per distinct query; with no provider
configured it answers `error` / `provider_not_configured` (not charged). The provider is injected through
`Sources`; `functions/providers/hibp.py` is Have I Been Pwned v3, built when `BULKAPI_HIBP_API_KEY` is set:

- an email address: `GET {base}/breachedaccount/{account}?truncateResponse=false` (404 means not breached);
- a domain: `GET {base}/breaches?domain={domain}`, the breaches of services run on that domain (HIBP's
  `breacheddomain` search needs a verified domain, which a bulk API cannot have).

Settings (functions/settings.py `EnrichSettings`): `hibp_api_key`, `hibp_base_url`, `hibp_requests_per_minute`
(default 10, the smallest HIBP subscription; raise it to match yours).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from email_validator import EmailNotValidError, validate_email

from functions.enrich._common import EMPTY_VALUE, columns_of, invalid, through_provider
from functions.enrich._hosts import HostError, parse_target, split, to_host
from functions.enrich.facts import DarkwebResult
from functions.enrich.online import OFFLINE, Sources
from functions.models import RowResult

INVALID = "invalid_darkweb_query"


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


def enrich(values: Sequence[str], sources: Sources = OFFLINE) -> list[RowResult]:
    """Breach exposure of each email or domain: validated offline, then one provider query per distinct value."""
    return through_provider(values, COLUMNS, normalize_query, sources.hibp, _known_offline)
