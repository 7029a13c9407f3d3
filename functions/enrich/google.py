"""Google: the first results of a web search for each query; needs an online provider (a programmable search API).

Inline search only (not an async job type). Offline, a query is whitespace-collapsed; an empty or overlong one is
`invalid` (not charged). Every other row asks the provider once per distinct query; with no provider configured it
answers `error` / `provider_not_configured` (not charged). Results are flattened into `MAX_RESULTS` fixed column
groups (`result_1_title`, `result_1_url`, `result_1_snippet`, ...) so the columns stay the same for every row.

The provider comes with the batch's `Sources` (functions/enrich/sources.py): a programmable search client (the
Google Custom Search JSON API shape: `GET {base}?key=&cx=&q=&num=` answering `items[].title/link/snippet` and
`searchInformation.totalResults`) when a search API key and engine id are configured. Settings (`EnrichSettings`):
`search_api_key`, `search_engine_id`, `search_base_url`, `search_requests_per_minute` (default 100, the API's
default per-minute quota).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.enrich._common import EMPTY_VALUE, ProviderFailure, columns_of, invalid, through_provider
from functions.enrich._http import PROVIDER_BAD_RESPONSE, JsonClient, ProviderError
from functions.enrich.online import OFFLINE, Sources
from functions.models import RowResult

INVALID = "invalid_query"
MAX_RESULTS = 3
# Search APIs reject longer queries (Google's limit is 2048 characters for the whole URL).
MAX_QUERY_LENGTH = 1024

_SPACES = re.compile(r"\s+")


class GoogleResult(BaseModel):
    """The columns of a search row."""

    query: str | None
    total_results: int | None = None
    result_count: int | None = None
    result_1_title: str | None = None
    result_1_url: str | None = None
    result_1_snippet: str | None = None
    result_2_title: str | None = None
    result_2_url: str | None = None
    result_2_snippet: str | None = None
    result_3_title: str | None = None
    result_3_url: str | None = None
    result_3_snippet: str | None = None
    from_cache: bool | None = None


COLUMNS: tuple[str, ...] = columns_of(GoogleResult)


def normalize_query(raw: str) -> str | RowResult:
    """The provider query for a value (whitespace collapsed), or its invalid row."""
    query = _SPACES.sub(" ", raw).strip()
    if not query:
        return invalid(COLUMNS, EMPTY_VALUE)
    if len(query) > MAX_QUERY_LENGTH:
        return invalid(COLUMNS, INVALID)
    return query


SEARCH_DEFAULT_BASE_URL = "https://www.googleapis.com/customsearch/v1"


class _SearchItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str | None = None
    link: str | None = None
    snippet: str | None = None


class _SearchInformation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # The API sends the count as a string ("12300"); pydantic's lax mode turns it into an int.
    total_results: int | None = Field(default=None, alias="totalResults")


class _SearchAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # A search without hits has no `items` at all.
    items: list[_SearchItem] = Field(default_factory=list)
    search_information: _SearchInformation | None = Field(default=None, alias="searchInformation")


def to_result(query: str, answer: _SearchAnswer) -> GoogleResult:
    """A search row from the API's answer, keeping the first `MAX_RESULTS` items."""
    items = answer.items[:MAX_RESULTS]
    slots: dict[str, Any] = {}
    for i, item in enumerate(items, start=1):
        slots[f"result_{i}_title"] = item.title
        slots[f"result_{i}_url"] = item.link
        slots[f"result_{i}_snippet"] = item.snippet
    total = answer.search_information.total_results if answer.search_information else None
    return GoogleResult(query=query, total_results=total, result_count=len(items), **slots)


class SearchProvider:
    """A programmable search JSON API (Google Custom Search shape): the first results of each query."""

    def __init__(
        self,
        api_key: str,
        engine_id: str,
        base_url: str = SEARCH_DEFAULT_BASE_URL,
        client: JsonClient | None = None,
    ) -> None:
        self._api_key = api_key
        self._engine_id = engine_id
        self._base_url = base_url
        self._client = client or JsonClient("search")

    def lookup(self, query: str) -> GoogleResult:
        """The first results of one query; raises ProviderError when the API cannot answer."""
        params = urlencode({"key": self._api_key, "cx": self._engine_id, "q": query, "num": MAX_RESULTS})
        body = self._client.get_json(f"{self._base_url}?{params}")
        try:
            answer = _SearchAnswer.model_validate(body)
        except ValidationError as exc:
            raise ProviderError(PROVIDER_BAD_RESPONSE, "not a search answer") from exc
        return to_result(query, answer)

    def lookup_many(self, queries: Sequence[str]) -> list[GoogleResult | ProviderFailure]:
        """One answer per query, looked up concurrently within the client's limits."""
        return self._client.map_queries(self.lookup, queries)


def enrich(values: Sequence[str], sources: Sources = OFFLINE) -> list[RowResult]:
    """The first search results for each query: validated offline, then one provider query per distinct query."""
    return through_provider(values, COLUMNS, normalize_query, sources.search)
