"""Preview of a job: what creating it would detect, count and charge, and its first rows enriched; nothing stored."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from functions.enrich import countries, enrich_values, result_columns
from functions.errors import InsufficientCreditsError
from functions.logic import csv_input, variants
from functions.logic.jobs import BalancePort, PhoneOptions, check_upload
from functions.models import RowResult

SAMPLE_ROWS = 10

Enrich = Callable[[str, Sequence[str]], list[RowResult]]


def preview(
    *,
    account_id: str,
    job_type: str,
    body: bytes,
    column: str | None,
    max_rows: int,
    max_bytes: int,
    credits: BalancePort,
    enrich: Enrich | None = None,
    options: PhoneOptions = PhoneOptions(),  # noqa: B008 - frozen, shared safely
) -> dict[str, Any]:
    """What `POST /api/bulk-jobs` would do with this form, without doing it.

    The checks are creation's own (`check_upload`), and the balance is compared as the reservation would compare
    it, so every refusal is the one creating the job would give (402 included). The sample rows are enriched with
    the offline sources only: previewing asks no provider (DNS, RDAP, websites, Have I Been Pwned) and costs nothing.
    """
    checked = check_upload(job_type, body, column, max_rows=max_rows, max_bytes=max_bytes, options=options)
    layout, total = checked.layout, checked.total_rows
    balance = credits.account_credits(account_id) or 0
    if balance < total:
        raise InsufficientCreditsError(
            f"this job needs {total} credits, the balance is {balance}", required=total, balance=balance
        )
    sample = list(itertools.islice(csv_input.iter_rows([body], layout), SAMPLE_ROWS))
    values = [row[layout.column_index] if layout.column_index < len(row) else "" for row in sample]
    if enrich is not None:
        outcomes = enrich(checked.job_type, values)
    else:
        regions = countries.row_regions(layout.header, sample, options.country_column, layout.column_index)
        outcomes = enrich_values(checked.job_type, values, country=options.country, regions=regions)
    columns = result_columns(checked.job_type)
    return {
        "type": checked.job_type,
        "detected": {
            "encoding": layout.encoding,
            "delimiter": variants.delimiter_name(layout.delimiter),
            "has_header": layout.has_header,
            "column": layout.column,
            "column_index": layout.column_index,
        },
        "columns": list(layout.header),
        "total_rows": total,
        "credits_required": total,
        "balance": balance,
        "rows": [
            {
                "cells": row,
                "value": value,
                "status": outcome.status,
                "error": outcome.error,
                "enrichment": {name: outcome.data.get(name) for name in columns},
            }
            for row, value, outcome in zip(sample, values, outcomes, strict=True)
        ],
    }
