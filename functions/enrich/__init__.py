"""The enrichment registry: one module per lookup type, one entry point for the worker and the inline endpoints.

Each module has a pydantic result model whose fields are the type's columns (`COLUMNS`, in order) and
`enrich(values, sources) -> list[RowResult]`: one result per value, in order, every row carrying every column.
`sources` are the online providers the batch may use (functions/enrich/online.py); the default is offline.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from functions.enrich.online import OFFLINE, Sources
from functions.models import RowResult


@dataclass(frozen=True)
class Enricher:
    """A lookup type: its result columns (stable order) and the function that enriches a batch of raw values."""

    type: str
    columns: tuple[str, ...]
    enrich: Callable[[Sequence[str], Sources], list[RowResult]]


# Each type's module, imported when the type is first used: a function that enriches emails never loads the phone
# metadata, the GeoIP tables or the legal-form lists, and an API cold start loads none of them.
_REGISTRY: dict[str, str] = {
    "email": "functions.enrich.email",
    "phone": "functions.enrich.phone",
    "company": "functions.enrich.company",
    "domain": "functions.enrich.domain",
    "ip": "functions.enrich.ip",
    "darkweb": "functions.enrich.darkweb",
    # Inline search only (/api/bulk-google-search); not an async job type.
    "google": "functions.enrich.google",
}


@functools.cache
def get_enricher(job_type: str) -> Enricher:
    """The enricher of a type; KeyError for an unknown type (callers validate the type first)."""
    module = importlib.import_module(_REGISTRY[job_type])
    return Enricher(job_type, module.COLUMNS, module.enrich)


def enrich_values(
    job_type: str,
    values: Sequence[str],
    sources: Sources = OFFLINE,
    *,
    country: str | None = None,
    regions: Sequence[str | None] | None = None,
) -> list[RowResult]:
    """Enrich a batch of raw values of one type: one result per value, in order, never raising for one bad value.

    Phones only: `country` is the job's region, `regions` each row's (from its country column), read in that order
    before the deployment's default.
    """
    if job_type == "phone":
        phone = importlib.import_module(_REGISTRY["phone"])
        return list(phone.enrich(values, sources, region=country, regions=regions))
    return get_enricher(job_type).enrich(values, sources)


def result_columns(job_type: str) -> tuple[str, ...]:
    """The enrichment columns a result CSV carries for this type, in order."""
    return get_enricher(job_type).columns
