"""Google: the first results of a web search for each query; needs an online provider (a programmable search API).

Inline search only (not an async job type). Offline, a query is whitespace-collapsed; an empty or overlong one is
`invalid` (not charged). Every other row asks the provider once per distinct query; with no provider configured it
answers `error` / `provider_not_configured` (not charged). Results are flattened into `MAX_RESULTS` fixed column
groups (`result_1_title`, `result_1_url`, `result_1_snippet`, ...) so the columns stay the same for every row.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel

from functions.enrich._common import EMPTY_VALUE, Provider, columns_of, invalid, through_provider
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


COLUMNS: tuple[str, ...] = columns_of(GoogleResult)


def normalize_query(raw: str) -> str | RowResult:
    """The provider query for a value (whitespace collapsed), or its invalid row."""
    query = _SPACES.sub(" ", raw).strip()
    if not query:
        return invalid(COLUMNS, EMPTY_VALUE)
    if len(query) > MAX_QUERY_LENGTH:
        return invalid(COLUMNS, INVALID)
    return query


def configured_provider() -> Provider[GoogleResult] | None:
    """The search provider configured for this deployment; none exists offline."""
    return None


def enrich_with(values: Sequence[str], provider: Provider[GoogleResult] | None) -> list[RowResult]:
    """Validate each query, then ask the provider once per distinct query (error rows when there is none)."""
    return through_provider(values, COLUMNS, normalize_query, provider)


def enrich(values: Sequence[str]) -> list[RowResult]:
    """The first search results for each query through the configured provider."""
    return enrich_with(values, configured_provider())
