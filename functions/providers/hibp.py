"""Have I Been Pwned v3, the darkweb lookup's provider (functions/enrich/darkweb.py validates the queries).

- an email address: `GET {base}/breachedaccount/{account}?truncateResponse=false` (404 means not breached);
- a domain: `GET {base}/breaches?domain={domain}`, the breaches of services run on that domain.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from functions.enrich._common import ProviderFailure
from functions.enrich.darkweb import query_type
from functions.enrich.facts import DarkwebResult
from functions.providers.http_client import PROVIDER_BAD_RESPONSE, JsonClient, ProviderError

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
