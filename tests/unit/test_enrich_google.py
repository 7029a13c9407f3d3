"""Google search enrichment offline: query checks, not-configured answers, flat result columns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from functions.enrich import google
from functions.enrich._common import ProviderFailure
from functions.enrich.facts import GoogleResult
from functions.enrich.online import Source, Sources
from functions.models import RowResult


def enrich_through(values: list[str], provider: Any) -> list[RowResult]:
    """Enrich with this provider as the batch's search source (no cache)."""
    return google.enrich(values, Sources(search=Source("search", GoogleResult, provider.lookup_many)))


def test_without_provider_every_query_is_a_not_configured_error() -> None:
    # Given no provider and queries with messy whitespace
    results = google.enrich(["best  pizza\tnew york ", "site:example.com pricing"])
    # Then each row is an uncharged error carrying the cleaned query
    assert [(r.status, r.error) for r in results] == [("error", "provider_not_configured")] * 2
    assert [r.data["query"] for r in results] == ["best pizza new york", "site:example.com pricing"]
    assert all(tuple(r.data) == google.COLUMNS for r in results)


def test_blank_and_overlong_queries_are_invalid() -> None:
    # Given a blank and a too-long query
    results = google.enrich(["   ", "x" * (google.MAX_QUERY_LENGTH + 1)])
    # Then they are invalid and not charged
    assert [(r.status, r.error) for r in results] == [("invalid", "empty_value"), ("invalid", "invalid_query")]


def test_columns_are_fixed_flat_result_groups() -> None:
    # Given the model's columns
    columns = google.COLUMNS
    # Then every result slot has title, url and snippet, in order
    assert columns[:3] == ("query", "total_results", "result_count")
    assert columns[3:-1] == tuple(
        f"result_{i}_{part}" for i in range(1, google.MAX_RESULTS + 1) for part in ("title", "url", "snippet")
    )
    # And the last column says whether the answer came from the cache
    assert columns[-1] == "from_cache"


def test_provider_results_become_row_data() -> None:
    # Given a provider answering one query
    class OneResult:
        def lookup_many(self, queries: Sequence[str]) -> list[GoogleResult | ProviderFailure]:
            return [
                GoogleResult(
                    query=q, total_results=1, result_count=1, result_1_title="Example", result_1_url="https://x.test/"
                )
                for q in queries
            ]

    # When a batch with a repeat goes through it
    results = enrich_through(["example", " example "], OneResult())
    # Then both rows are ok with the flattened result
    assert [r.status for r in results] == ["ok", "ok"]
    assert results[1].data["result_1_url"] == "https://x.test/"
    assert results[1].data["result_2_url"] is None
