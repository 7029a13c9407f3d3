"""Darkweb enrichment offline: input checks, not-configured answers, and the provider seam."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from functions.enrich import darkweb
from functions.enrich._common import ProviderFailure
from functions.enrich.facts import DarkwebResult
from functions.enrich.online import Source, Sources
from functions.models import RowResult


def enrich_through(values: list[str], provider: Any) -> list[RowResult]:
    """Enrich with this provider as the batch's hibp source (no cache)."""
    return darkweb.enrich(values, Sources(hibp=Source("hibp", DarkwebResult, provider.lookup_many)))


class FakeBreaches:
    """A provider double that records its calls."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def lookup_many(self, queries: Sequence[str]) -> list[DarkwebResult | ProviderFailure]:
        self.calls.append(list(queries))
        out: list[DarkwebResult | ProviderFailure] = []
        for q in queries:
            if q.startswith("timeout-"):
                out.append(ProviderFailure("provider_timeout"))
                continue
            out.append(
                DarkwebResult(
                    query=q,
                    query_type=darkweb.query_type(q),
                    breached=True,
                    breach_count=2,
                    breaches="Adobe;LinkedIn",
                    latest_breach="2016-05-17",
                    data_classes="Email addresses;Passwords",
                )
            )
        return out


def test_without_provider_valid_rows_are_not_configured_errors() -> None:
    # Given no provider configured and an email and a domain URL
    results = darkweb.enrich(["John.Doe@Example.com", "https://www.example.co.uk/login"])
    # Then each row is an uncharged error naming the missing provider, with the query it would have sent
    assert [(r.status, r.error) for r in results] == [("error", "provider_not_configured")] * 2
    assert [r.data["query"] for r in results] == ["john.doe@example.com", "example.co.uk"]
    assert [r.data["query_type"] for r in results] == ["email", "domain"]
    assert all(tuple(r.data) == darkweb.COLUMNS for r in results)


def test_values_that_are_neither_email_nor_domain_are_invalid() -> None:
    # Given a blank, garbage and a broken address
    results = darkweb.enrich(["", "hello world", "john@"])
    # Then they are invalid (not charged) whatever the provider
    assert [(r.status, r.error) for r in results] == [
        ("invalid", "empty_value"),
        ("invalid", "invalid_darkweb_query"),
        ("invalid", "invalid_darkweb_query"),
    ]


def test_provider_is_asked_once_per_distinct_query_and_failures_stay_per_row() -> None:
    # Given a provider and a batch with a repeat (different case) and one query the provider cannot answer
    provider = FakeBreaches()
    values = ["a@example.com", "A@Example.com", "ops.timeout-example.com", "bad value"]
    # When the batch is enriched through it
    results = enrich_through(values, provider)
    # Then the provider saw each distinct valid query once, and each row got its own answer
    assert provider.calls == [["a@example.com", "timeout-example.com"]]
    assert [(r.status, r.error) for r in results] == [
        ("ok", None),
        ("ok", None),
        ("error", "provider_timeout"),
        ("invalid", "invalid_darkweb_query"),
    ]
    assert results[0].data["breaches"] == "Adobe;LinkedIn"
    assert results[2].data["query"] == "timeout-example.com"


def test_a_provider_that_raises_fails_its_rows_not_the_batch() -> None:
    # Given a provider that blows up
    class Broken:
        def lookup_many(self, queries: Sequence[str]) -> list[DarkwebResult | ProviderFailure]:
            raise RuntimeError("boom")

    # When a batch goes through it
    results = enrich_through(["a@example.com", ""], Broken())
    # Then the valid row is an error row and the blank one still invalid
    assert [(r.status, r.error) for r in results] == [("error", "provider_failed"), ("invalid", "empty_value")]
