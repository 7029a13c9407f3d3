"""Online sources: a provider's answers per distinct query, through the (type-agnostic) answer cache.

A `Source` wraps one provider lookup (HIBP, the search API, DNS, RDAP, a website fetch). For a batch it asks each
distinct query once: first the cache (keyed by source name and normalized query, so `dns#acme.de` serves both the
email and the domain type), then the provider for the misses; successful answers are stored with the TTL, failures
are kept for 10 minutes only. A cache that cannot answer is logged and skipped: it costs a provider call,
never a row. Rows built from a cached answer carry `from_cache = true`.

Failed lookups are remembered for `FAILURE_TTL_SECONDS` (10 min): a batch deferred because its time budget ran out
(`provider_deferred`, see functions/logic/processing.py) then asks new values when it comes back.

`augment` merges a source's answers into rows that were computed offline: an ok row gains the answer's fields, or
becomes an `error` row with the provider's code (offline columns kept, not charged) when the provider failed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from functions.enrich._common import ProviderFailure
from functions.enrich.facts import DarkwebResult, DnsFacts, DomainRegistration, GoogleResult, IpNetwork, WebsiteFacts
from functions.models import RowResult

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

FROM_CACHE = "from_cache"
PROVIDER_FAILED = "provider_failed"
# A query the batch's time budget left no room for. The worker defers such a batch (functions/logic/processing.py);
# where it cannot, `settle_unasked` turns the code into `provider_timeout`: to the user, the provider was too slow.
UNASKED = "provider_deferred"
UNASKED_FINAL = "provider_timeout"
DEFAULT_TTL_SECONDS = 24 * 3600
# Failed lookups are remembered briefly, so a deferred batch asks new values when it comes back, not the same
# failing ones again; long enough for its next turns, short enough that an outage is soon forgotten.
FAILURE_TTL_SECONDS = 600
_FAILURE_KEY = "__failure__"


class CachePort(Protocol):
    """Stored provider answers by key; expired entries are never returned."""

    def get_many(self, keys: Sequence[str]) -> dict[str, str]: ...
    def put_many(self, entries: Mapping[str, str], ttl_seconds: int) -> None: ...


@dataclass(frozen=True)
class Answered(Generic[T]):
    """A provider's answer for one query, and whether it came from the cache."""

    value: T
    cached: bool


class Source(Generic[T]):
    """One provider lookup, asked once per distinct query, through the cache when there is one.

    With a `budget_seconds`, the misses go to the provider in chunks of `chunk` and no chunk starts once the
    budget is spent: the rest answer `provider_deferred` (the worker sends the batch back for them; other callers
    settle them as `provider_timeout`). A dead resolver or a list of dead websites then costs a batch its budget,
    not the worker's whole timeout (and its retries).
    """

    def __init__(
        self,
        name: str,
        model: type[T],
        lookup_many: Callable[[Sequence[str]], Sequence[T | ProviderFailure]],
        cache: CachePort | None = None,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        *,
        budget_seconds: float | None = None,
        chunk: int = 128,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._model = model
        self._lookup_many = lookup_many
        self._cache = cache
        self._ttl = ttl_seconds
        self._budget = budget_seconds
        self.chunk = max(1, chunk)
        self._clock = clock

    def _key(self, query: str) -> str:
        return f"{self.name}#{query}"

    def _from_cache(self, queries: Sequence[str]) -> dict[str, T | ProviderFailure]:
        if self._cache is None or not queries:
            return {}
        try:
            stored = self._cache.get_many([self._key(q) for q in queries])
        except Exception:
            logger.exception("%s: the answer cache could not be read; asking the provider", self.name)
            return {}
        found: dict[str, T | ProviderFailure] = {}
        for query in queries:
            raw = stored.get(self._key(query))
            if raw is None:
                continue
            try:
                if raw.startswith('{"' + _FAILURE_KEY):
                    found[query] = ProviderFailure(str(json.loads(raw)[_FAILURE_KEY]))
                else:
                    found[query] = self._model.model_validate_json(raw)
            except (ValidationError, ValueError, KeyError):
                # An answer stored by an older release with other fields: a miss, overwritten below.
                continue
        return found

    def _ask(self, queries: list[str]) -> list[T | ProviderFailure]:
        if self._budget is None:
            return self._ask_chunk(queries)
        deadline = self._clock() + self._budget
        answers: list[T | ProviderFailure] = []
        for start in range(0, len(queries), self.chunk):
            part = queries[start : start + self.chunk]
            if self._clock() >= deadline:
                logger.info("%s: batch budget spent; %d queries not asked", self.name, len(queries) - start)
                answers += [ProviderFailure(UNASKED)] * (len(queries) - start)
                break
            answers += self._ask_chunk(part)
        return answers

    def _ask_chunk(self, queries: list[str]) -> list[T | ProviderFailure]:
        try:
            replies = list(self._lookup_many(queries))
        except Exception:
            logger.exception("%s: the provider failed for a whole batch", self.name)
            return [ProviderFailure(PROVIDER_FAILED)] * len(queries)
        if len(replies) != len(queries):
            logger.error("%s: the provider answered %d of %d queries", self.name, len(replies), len(queries))
            return [ProviderFailure(PROVIDER_FAILED)] * len(queries)
        return replies

    def _store(self, answers: Mapping[str, T | ProviderFailure]) -> None:
        if self._cache is None or not answers:
            return
        found = {self._key(q): a.model_dump_json() for q, a in answers.items() if not isinstance(a, ProviderFailure)}
        failed = {
            self._key(q): json.dumps({_FAILURE_KEY: a.code})
            for q, a in answers.items()
            if isinstance(a, ProviderFailure) and a.code != UNASKED
        }
        try:
            for entries, ttl in ((found, self._ttl), (failed, min(self._ttl, FAILURE_TTL_SECONDS))):
                if entries:
                    self._cache.put_many(entries, ttl)
        except Exception:
            logger.exception("%s: the answer cache could not be written", self.name)

    def answers(self, queries: Sequence[str]) -> dict[str, Answered[T] | ProviderFailure]:
        """An answer (or failure) per distinct query; the provider only sees the queries the cache lacks."""
        distinct = list(dict.fromkeys(queries))
        cached = self._from_cache(distinct)
        misses = [q for q in distinct if q not in cached]
        live = dict(zip(misses, self._ask(misses), strict=True)) if misses else {}
        self._store(live)
        out: dict[str, Answered[T] | ProviderFailure] = {
            q: a if isinstance(a, ProviderFailure) else Answered(a, cached=True) for q, a in cached.items()
        }
        for q, a in live.items():
            out[q] = a if isinstance(a, ProviderFailure) else Answered(a, cached=False)
        return out


@dataclass(frozen=True)
class Sources:
    """The online sources a batch may use (built once per cold start, functions/providers/sources.py); None: off."""

    dns: Source[DnsFacts] | None = None
    rdap_domain: Source[DomainRegistration] | None = None
    rdap_ip: Source[IpNetwork] | None = None
    website: Source[WebsiteFacts] | None = None
    hibp: Source[DarkwebResult] | None = None
    search: Source[GoogleResult] | None = None
    # Phone numbers without `+` are read as numbers of this region (settings' `phone_default_region`).
    phone_region: str = "US"


OFFLINE = Sources()


def settle_unasked(rows: Sequence[RowResult]) -> list[RowResult]:
    """Rows a budget left unasked, for a caller that will not ask again: `provider_timeout` errors."""
    return [RowResult(status=r.status, error=UNASKED_FINAL, data=r.data) if r.error == UNASKED else r for r in rows]


def count_unasked(rows: Sequence[RowResult]) -> int:
    """How many rows a budget left unasked."""
    return sum(1 for r in rows if r.error == UNASKED)


def augment(
    rows: Sequence[RowResult],
    source: Source[Any] | None,
    query_of: Callable[[dict[str, Any]], str | None],
) -> list[RowResult]:
    """Merge a source's answers into the ok rows it has a query for; a failed lookup makes the row an error.

    Rows keep their offline columns either way. `from_cache` becomes true when any answer merged into a row came
    from the cache, false when all were live; rows the source was not asked about keep theirs.
    """
    if source is None:
        return list(rows)
    queries: list[str | None] = [query_of(r.data) if r.status == "ok" else None for r in rows]
    answers = source.answers([q for q in queries if q is not None])
    out: list[RowResult] = []
    for row, query in zip(rows, queries, strict=True):
        if query is None:
            out.append(row)
            continue
        answer = answers[query]
        data = dict(row.data)
        if isinstance(answer, ProviderFailure):
            out.append(RowResult(status="error", error=answer.code, data=data))
            continue
        data.update(answer.value.model_dump())
        if FROM_CACHE in data:
            data[FROM_CACHE] = bool(data[FROM_CACHE]) or answer.cached
        out.append(RowResult(status="ok", data=data))
    return out
