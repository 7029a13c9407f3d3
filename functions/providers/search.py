"""A programmable search JSON API (Google Custom Search shape), the search lookup's provider."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.enrich._common import ProviderFailure
from functions.enrich.facts import GoogleResult
from functions.enrich.google import MAX_RESULTS
from functions.providers.http_client import PROVIDER_BAD_RESPONSE, JsonClient, ProviderError

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
