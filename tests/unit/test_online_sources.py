"""Online sources: one provider call per distinct query, the answer cache, and merging answers into offline rows."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from functions.enrich import darkweb
from functions.enrich._common import ProviderFailure
from functions.enrich.facts import DarkwebResult
from functions.enrich.online import Source, Sources, augment
from functions.models import RowResult
from functions.providers.sources import from_settings
from functions.settings import EnrichSettings
from tests.fakes import CleanBreaches, MemoryCache


class Facts(BaseModel):
    """A small provider answer."""

    size: int


class CountingProvider:
    """Answers the length of each query; `fail` queries fail; remembers every batch it was asked."""

    def __init__(self, fail: Sequence[str] = ()) -> None:
        self.asked: list[list[str]] = []
        self.fail = set(fail)

    def lookup_many(self, queries: Sequence[str]) -> list[Facts | ProviderFailure]:
        self.asked.append(list(queries))
        return [ProviderFailure("boom") if q in self.fail else Facts(size=len(q)) for q in queries]


def test_each_distinct_query_is_asked_once_and_answers_are_cached_with_the_ttl() -> None:
    # Given a source with a cache
    provider, cache = CountingProvider(), MemoryCache()
    source = Source("facts", Facts, provider.lookup_many, cache, ttl_seconds=600)
    # When a batch with a duplicate is answered, then a second batch overlapping the first
    first = source.answers(["a.de", "bb.de", "a.de"])
    second = source.answers(["bb.de", "ccc.de"])
    # Then the provider saw each query once, the second batch only the new one
    assert provider.asked == [["a.de", "bb.de"], ["ccc.de"]]
    assert {q: (a.value.size, a.cached) for q, a in first.items() if not isinstance(a, ProviderFailure)} == {
        "a.de": (4, False),
        "bb.de": (5, False),
    }
    assert {q: (a.value.size, a.cached) for q, a in second.items() if not isinstance(a, ProviderFailure)} == {
        "bb.de": (5, True),
        "ccc.de": (6, False),
    }
    # And entries are keyed by source and query, stored with the TTL
    assert set(cache.entries) == {"facts#a.de", "facts#bb.de", "facts#ccc.de"}
    assert cache.ttls == [600, 600]


def test_failures_are_remembered_for_ten_minutes_only() -> None:
    # Given a provider failing one query, behind a cache with a day's TTL
    provider, cache = CountingProvider(fail=["bad.de"]), MemoryCache()
    source = Source("facts", Facts, provider.lookup_many, cache, ttl_seconds=86400)
    # When it is asked twice
    first = source.answers(["bad.de", "good.de"])
    second = source.answers(["bad.de", "good.de"])
    # Then the failure is an answer with its code both times, asked of the provider once
    assert first["bad.de"] == second["bad.de"] == ProviderFailure("boom")
    assert provider.asked == [["bad.de", "good.de"]]
    # And it was stored for ten minutes, the answer for the day
    assert sorted(cache.ttls) == [600, 86400]
    # When the remembered failure has expired
    del cache.entries["facts#bad.de"]
    source.answers(["bad.de"])
    # Then it is asked again
    assert provider.asked[-1] == ["bad.de"]


def test_a_broken_cache_costs_provider_calls_never_rows() -> None:
    # Given a cache whose table cannot be reached
    provider = CountingProvider()
    source = Source("facts", Facts, provider.lookup_many, MemoryCache(broken=True))
    # When a batch is answered
    answers = source.answers(["a.de"])
    # Then the provider answered it
    assert provider.asked == [["a.de"]]
    assert not isinstance(answers["a.de"], ProviderFailure) and answers["a.de"].value.size == 4


def test_a_stored_answer_of_another_shape_is_a_miss() -> None:
    # Given a cache holding an answer an older release stored with other fields
    provider, cache = CountingProvider(), MemoryCache()
    cache.entries["facts#a.de"] = '{"length": 4}'
    source = Source("facts", Facts, provider.lookup_many, cache)
    # When the query is answered
    answers = source.answers(["a.de"])
    # Then the provider was asked and the entry overwritten
    assert provider.asked == [["a.de"]]
    assert not isinstance(answers["a.de"], ProviderFailure) and answers["a.de"].cached is False
    assert cache.entries["facts#a.de"] == '{"size":4}'


def test_a_provider_answering_the_wrong_number_of_queries_fails_those_rows_only() -> None:
    # Given a provider that drops an answer
    source = Source("facts", Facts, lambda queries: [Facts(size=1)])
    # When two queries are answered
    answers = source.answers(["a.de", "b.de"])
    # Then both are failures, nothing raised
    assert answers == {"a.de": ProviderFailure("provider_failed"), "b.de": ProviderFailure("provider_failed")}


def test_augment_merges_answers_into_ok_rows_and_failures_become_uncharged_errors() -> None:
    # Given offline rows: two ok (one of them a failing query), one invalid
    rows = [
        RowResult(status="ok", data={"domain": "a.de", "size": None, "from_cache": None}),
        RowResult(status="ok", data={"domain": "bad.de", "size": None, "from_cache": None}),
        RowResult(status="invalid", error="invalid_domain", data={"domain": None, "size": None, "from_cache": None}),
    ]
    cache = MemoryCache()
    cache.entries["facts#a.de"] = '{"size":99}'
    source = Source("facts", Facts, CountingProvider(fail=["bad.de"]).lookup_many, cache)
    # When the source's answers are merged
    merged = augment(rows, source, lambda data: data["domain"])
    # Then the ok row gained the (cached, so marked) answer, the failed one is an error keeping its offline columns
    assert merged[0] == RowResult(status="ok", data={"domain": "a.de", "size": 99, "from_cache": True})
    assert merged[1] == RowResult(
        status="error", error="boom", data={"domain": "bad.de", "size": None, "from_cache": None}
    )
    # And the invalid row was not asked about and is unchanged
    assert merged[2] == rows[2]
    # And without a source the rows are as they were
    assert augment(rows, None, lambda data: data["domain"]) == rows


def test_cached_darkweb_answers_are_marked_and_cost_no_second_lookup() -> None:
    # Given the darkweb type with a provider behind a cache
    provider, cache = CleanBreaches(), MemoryCache()
    sources = Sources(hibp=Source("hibp", DarkwebResult, provider.lookup_many, cache))
    # When the same address is enriched in two batches
    first = darkweb.enrich(["a@example.com"], sources)
    second = darkweb.enrich(["A@Example.com"], sources)
    # Then the provider was asked once; the second row is the same answer, marked as cached
    assert provider.asked == ["a@example.com"]
    assert first[0].data["from_cache"] is False and second[0].data["from_cache"] is True
    assert {k: v for k, v in first[0].data.items() if k != "from_cache"} == {
        k: v for k, v in second[0].data.items() if k != "from_cache"
    }


def test_a_spent_budget_leaves_the_rest_unasked() -> None:
    # Given a provider that takes 6 s per chunk of two, under a 10 s budget (a clock we move)
    now = [0.0]

    class SlowProvider(CountingProvider):
        def lookup_many(self, queries: Sequence[str]) -> list[Facts | ProviderFailure]:
            now[0] += 6
            return super().lookup_many(queries)

    provider = SlowProvider()
    source = Source("facts", Facts, provider.lookup_many, budget_seconds=10, chunk=2, clock=lambda: now[0])
    # When seven queries are answered
    answers = source.answers([f"q{i}.de" for i in range(7)])
    # Then two chunks were asked before the budget ran out, and the other three are marked unasked
    assert provider.asked == [["q0.de", "q1.de"], ["q2.de", "q3.de"]]
    assert [answers[f"q{i}.de"] for i in range(4, 7)] == [ProviderFailure("provider_deferred")] * 3
    assert not isinstance(answers["q3.de"], ProviderFailure)


def test_rate_limited_providers_check_the_budget_between_small_chunks() -> None:
    # Given HIBP at 10 requests per minute and a 12 s budget
    settings = EnrichSettings(hibp_api_key="k", hibp_requests_per_minute=10, provider_budget_seconds=12)
    # When the sources are built
    hibp = from_settings(settings).hibp
    # Then its chunks are what the rate allows within the budget (2), so the budget is checked every 2 lookups
    assert hibp is not None and hibp.chunk == 2
