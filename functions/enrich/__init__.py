"""The enrichment registry: one module per lookup type, one entry point for the worker and the inline endpoints."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from functions.enrich import email
from functions.models import RowResult


@dataclass(frozen=True)
class Enricher:
    """A lookup type: its result columns (stable order) and the function that enriches a batch of raw values."""

    type: str
    columns: tuple[str, ...]
    enrich: Callable[[Sequence[str]], list[RowResult]]


def _not_implemented(values: Sequence[str]) -> list[RowResult]:
    return [RowResult(status="error", error="type_not_implemented") for _ in values]


_REGISTRY: dict[str, Enricher] = {
    "email": Enricher("email", email.COLUMNS, email.enrich),
    "phone": Enricher("phone", (), _not_implemented),
    "company": Enricher("company", (), _not_implemented),
    "domain": Enricher("domain", (), _not_implemented),
    "ip": Enricher("ip", (), _not_implemented),
    "darkweb": Enricher("darkweb", (), _not_implemented),
}


def get_enricher(job_type: str) -> Enricher:
    """The enricher of a type; KeyError for an unknown type (callers validate the type first)."""
    return _REGISTRY[job_type]


def enrich_values(job_type: str, values: Sequence[str]) -> list[RowResult]:
    """Enrich a batch of raw values of one type: one result per value, in order, never raising for one bad value."""
    return get_enricher(job_type).enrich(values)


def result_columns(job_type: str) -> tuple[str, ...]:
    """The enrichment columns a result CSV carries for this type, in order."""
    return get_enricher(job_type).columns
