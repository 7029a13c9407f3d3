"""What every lookup type shares: columns from a result model, row results, per-call dedup and the provider seam."""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from functions.models import RowResult

logger = logging.getLogger(__name__)

EMPTY_VALUE = "empty_value"
PROVIDER_NOT_CONFIGURED = "provider_not_configured"
# Not a user's fault and not chargeable: an unexpected exception for one value must not fail the batch.
INTERNAL_ERROR = "enrichment_failed"


def columns_of(model: type[BaseModel]) -> tuple[str, ...]:
    """The result columns of a type: its model's fields, in declaration order."""
    return tuple(model.model_fields)


def ok(result: BaseModel) -> RowResult:
    """A chargeable row carrying every column of its model."""
    return RowResult(status="ok", data=result.model_dump())


def _blank(columns: Sequence[str], known: dict[str, Any]) -> dict[str, Any]:
    # Every row carries every column, so CSV and JSON consumers see one shape per type.
    data: dict[str, Any] = dict.fromkeys(columns)
    data.update((k, v) for k, v in known.items() if k in data)
    return data


def invalid(columns: Sequence[str], error: str, **known: Any) -> RowResult:
    """A row whose input cannot be a value of the type (not charged)."""
    return RowResult(status="invalid", error=error, data=_blank(columns, known))


def failed(columns: Sequence[str], error: str, **known: Any) -> RowResult:
    """A row that could not be enriched for a reason that is not the input's fault (not charged)."""
    return RowResult(status="error", error=error, data=_blank(columns, known))


def enrich_each(
    values: Sequence[str],
    columns: Sequence[str],
    key: Callable[[str], Hashable],
    compute: Callable[[str], RowResult],
) -> list[RowResult]:
    """One result per value in order; values with the same key are computed once; one bad value never raises."""
    done: dict[Hashable, RowResult] = {}
    out: list[RowResult] = []
    for raw in values:
        # CSV readers and JSON bodies can hand over None for a missing cell; treat it as blank, not as a crash.
        text = raw if isinstance(raw, str) else ""
        k = key(text)
        result = done.get(k)
        if result is None:
            try:
                result = compute(text)
            except Exception:
                logger.exception("enrichment of one value failed")
                result = failed(columns, INTERNAL_ERROR)
            done[k] = result
        out.append(result)
    return out


def strip_key(raw: str) -> str:
    """The dedup key for values whose meaning ignores surrounding whitespace only."""
    return raw.strip()


def fold_key(raw: str) -> str:
    """The dedup key for case-insensitive values (hosts, addresses)."""
    # lower(), not casefold(): casefold maps "ß" to "ss", and faß.de and fass.de are different IDNA 2008 names.
    return raw.strip().lower()


@dataclass(frozen=True)
class ProviderFailure:
    """A provider's answer for one query that carries no data; `code` becomes the row's error code."""

    code: str


class AnswerSource(Protocol):
    """What `through_provider` needs of an online source (functions/enrich/online.py `Source`)."""

    def answers(self, queries: Sequence[str]) -> Mapping[str, Any]: ...


def through_provider(
    values: Sequence[str],
    columns: Sequence[str],
    normalize: Callable[[str], str | RowResult],
    source: AnswerSource | None,
    describe: Callable[[str], dict[str, Any]] = lambda query: {"query": query},
) -> list[RowResult]:
    """Validate each value offline, then ask the source once per distinct query (or answer not configured).

    `describe` gives the columns known offline for a query; rows the provider cannot answer still show them.
    """
    prepared: list[str | RowResult] = []
    for raw in values:
        try:
            prepared.append(normalize(raw if isinstance(raw, str) else ""))
        except Exception:
            logger.exception("normalization of one value failed")
            prepared.append(failed(columns, INTERNAL_ERROR))
    queries = list(dict.fromkeys(p for p in prepared if isinstance(p, str)))
    answers: dict[str, RowResult] = {}
    if source is None:
        answers = {q: failed(columns, PROVIDER_NOT_CONFIGURED, **describe(q)) for q in queries}
    elif queries:
        for query, answer in source.answers(queries).items():
            if isinstance(answer, ProviderFailure):
                answers[query] = failed(columns, answer.code, **describe(query))
            else:
                answers[query] = RowResult(status="ok", data={**answer.value.model_dump(), "from_cache": answer.cached})
    return [p if isinstance(p, RowResult) else answers[p] for p in prepared]
