"""Google: the first results of a web search for each query; needs an online provider (a programmable search API).

Inline search only (not an async job type). Offline, a query is whitespace-collapsed; an empty or overlong one is
`invalid` (not charged). Every other row asks the provider once per distinct query; with no provider configured it
answers `error` / `provider_not_configured` (not charged). Results are flattened into `MAX_RESULTS` fixed column
groups (`result_1_title`, `result_1_url`, `result_1_snippet`, ...) so the columns stay the same for every row.

The provider comes with the batch's `Sources` (functions/providers/sources.py): a programmable search client (the
Google Custom Search JSON API shape: `GET {base}?key=&cx=&q=&num=` answering `items[].title/link/snippet` and
`searchInformation.totalResults`) when a search API key and engine id are configured. Settings (`EnrichSettings`):
`search_api_key`, `search_engine_id`, `search_base_url`, `search_requests_per_minute` (default 100, the API's
default per-minute quota).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from functions.enrich._common import EMPTY_VALUE, columns_of, invalid, through_provider
from functions.enrich.facts import GoogleResult
from functions.enrich.online import OFFLINE, Sources
from functions.models import RowResult

INVALID = "invalid_query"
MAX_RESULTS = 3
# Search APIs reject longer queries (Google's limit is 2048 characters for the whole URL).
MAX_QUERY_LENGTH = 1024

_SPACES = re.compile(r"\s+")


COLUMNS: tuple[str, ...] = columns_of(GoogleResult)


def normalize_query(raw: str) -> str | RowResult:
    """The provider query for a value (whitespace collapsed), or its invalid row."""
    query = _SPACES.sub(" ", raw).strip()
    if not query:
        return invalid(COLUMNS, EMPTY_VALUE)
    if len(query) > MAX_QUERY_LENGTH:
        return invalid(COLUMNS, INVALID)
    return query


def enrich(values: Sequence[str], sources: Sources = OFFLINE) -> list[RowResult]:
    """The first search results for each query: validated offline, then one provider query per distinct query."""
    return through_provider(values, COLUMNS, normalize_query, sources.search)
