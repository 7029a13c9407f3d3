"""Darkweb: breach exposure of an email address or a domain; needs an online provider (e.g. Have I Been Pwned).

Offline, each value is checked first: a value that is neither an email address nor a domain is `invalid`
(`invalid_darkweb_query`, not charged). Every other row asks the provider once per distinct query; with no provider
configured it answers `error` / `provider_not_configured` (not charged). The provider is injected through
`enrich_with`; `configured_provider()` builds Have I Been Pwned v3 when `BULKAPI_HIBP_API_KEY` is set:

- an email address: `GET {base}/breachedaccount/{account}?truncateResponse=false` (404 means not breached);
- a domain: `GET {base}/breaches?domain={domain}`, the breaches of services run on that domain (HIBP's
  `breacheddomain` search needs a verified domain, which a bulk API cannot have).

Settings (functions/settings.py `EnrichSettings`): `hibp_api_key`, `hibp_base_url`, `hibp_requests_per_minute`
(default 10, the smallest HIBP subscription; raise it to match yours).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from functions.enrich._common import EMPTY_VALUE, ProviderFailure, columns_of, invalid, through_provider
from functions.enrich._hosts import HostError, parse_target, split, to_host
from functions.enrich._http import PROVIDER_BAD_RESPONSE, JsonClient, ProviderError
from functions.enrich.online import OFFLINE, Sources
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
    from_cache: bool | None = None


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


HIBP_DEFAULT_BASE_URL = "https://haveibeenpwned.com/api/v3"


class _Breach(BaseModel):
    """The fields of an HIBP breach this type reports."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(alias="Name")
    breach_date: str | None = Field(default=None, alias="BreachDate")
    data_classes: list[str] = Field(default_factory=list, alias="DataClasses")


_BREACHES = TypeAdapter(list[_Breach])


def summarize(query: str, breaches: Sequence[_Breach]) -> DarkwebResult:
    """A darkweb row from a list of breaches (empty: not breached)."""
    dates = [b.breach_date for b in breaches if b.breach_date]
    classes = sorted({c for b in breaches for c in b.data_classes})
    return DarkwebResult(
        query=query,
        query_type=query_type(query),
        breached=bool(breaches),
        breach_count=len(breaches),
        breaches=";".join(b.name for b in breaches) or None,
        latest_breach=max(dates) if dates else None,
        data_classes=";".join(classes) or None,
    )


class HibpProvider:
    """Have I Been Pwned v3: breached accounts by email address, breached services by domain."""

    def __init__(self, api_key: str, base_url: str = HIBP_DEFAULT_BASE_URL, client: JsonClient | None = None) -> None:
        self._api_key = api_key
        self._base_url = base_url.rstrip("/")
        self._client = client or JsonClient("hibp")

    def lookup(self, query: str) -> DarkwebResult:
        """The breaches of one normalized query; raises ProviderError when HIBP cannot answer."""
        if "@" in query:
            url = f"{self._base_url}/breachedaccount/{quote(query, safe='')}?truncateResponse=false"
        else:
            url = f"{self._base_url}/breaches?domain={quote(query, safe='')}"
        body = self._client.get_json(url, {"hibp-api-key": self._api_key}, absent=(404,))
        try:
            breaches = _BREACHES.validate_python(body or [])
        except ValidationError as exc:
            raise ProviderError(PROVIDER_BAD_RESPONSE, "not a list of breaches") from exc
        return summarize(query, breaches)

    def lookup_many(self, queries: Sequence[str]) -> list[DarkwebResult | ProviderFailure]:
        """One answer per query, looked up concurrently within the client's limits."""
        return self._client.map_queries(self.lookup, queries)


def enrich(values: Sequence[str], sources: Sources = OFFLINE) -> list[RowResult]:
    """Breach exposure of each email or domain: validated offline, then one provider query per distinct value."""
    return through_provider(values, COLUMNS, normalize_query, sources.hibp, _known_offline)
