"""Preview of a job: what creating it would detect, count and charge, and its first rows enriched; nothing stored."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from functions.enrich import countries, enrich_values, result_columns
from functions.errors import InputError, InsufficientCreditsError
from functions.logic import csv_input, input_formats, intake, variants
from functions.logic.jobs import PhoneOptions, check_country_column, check_type, check_upload, decode_upload, read_head
from functions.logic.ports import BalancePort
from functions.models import RowResult

SAMPLE_ROWS = 10
# What the console and the CLI send of a file larger than the form takes: its first MiB, with `file_size`.
HEAD_BYTES = 1024 * 1024
# Of a compressed file or a workbook, the preview reads this much CSV text: its rows are counted from that head.
DECODED_BYTES = 1024 * 1024

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
    file_size: int | None = None,
    sheet: str | None = None,
    max_file_bytes: int = 1024**3,
    options: PhoneOptions = PhoneOptions(),  # noqa: B008 - frozen, shared safely
) -> dict[str, Any]:
    """What `POST /api/bulk-jobs` would do with this form, without doing it.

    A whole CSV passes creation's own checks (`check_upload`), and the balance is compared as the reservation would
    compare it, so every refusal is the one creating the job would give (402 included). A head of a larger file
    (`file_size` over the bytes sent), a compressed file or a workbook is read as far as the preview goes: then
    `truncated` says so and the rows are counted from that head. The sample rows are enriched with the offline
    sources only: previewing asks no provider (DNS, RDAP, websites, Have I Been Pwned) and costs nothing.
    """
    job_type = check_type(job_type)
    partial = file_size is not None and file_size > len(body)
    kind = input_formats.kind_of(body[:8])
    estimate: int | None = None
    if kind is input_formats.Kind.CSV and not partial:
        checked = check_upload(job_type, body, column, max_rows=max_rows, max_bytes=max_bytes, options=options)
        layout, total, text, truncated, sheet_read = checked.layout, checked.total_rows or 0, body, False, None
    else:
        kind, layout, total, text, truncated, sheet_read = _head_preview(
            job_type, body, column, sheet=sheet, partial=partial, max_rows=max_rows, max_bytes=max_bytes,
            max_file_bytes=max_file_bytes,
        )  # fmt: skip
        check_country_column(layout, options.country_column)
        if partial and file_size is not None and kind is input_formats.Kind.CSV:
            # By the share of the file the head is (what a compressed head inflates to is not such a share).
            estimate = round(total * file_size / len(text))
    balance = credits.account_credits(account_id) or 0
    if balance < total:
        raise InsufficientCreditsError(
            f"this job needs {total} credits, the balance is {balance}", required=total, balance=balance
        )
    sample = list(itertools.islice(csv_input.iter_rows([text], layout), SAMPLE_ROWS))
    values = [row[layout.column_index] if layout.column_index < len(row) else "" for row in sample]
    if enrich is not None:
        outcomes = enrich(job_type, values)
    else:
        regions = countries.row_regions(layout.header, sample, options.country_column, layout.column_index)
        outcomes = enrich_values(job_type, values, country=options.country, regions=regions)
    columns = result_columns(job_type)
    return {
        "type": job_type,
        "detected": {
            "encoding": layout.encoding,
            "delimiter": variants.delimiter_name(layout.delimiter),
            "has_header": layout.has_header,
            "column": layout.column,
            "column_index": layout.column_index,
        },
        "columns": list(layout.header),
        "format": kind.value,
        "sheet": sheet_read,
        "truncated": truncated,
        "estimated_total_rows": estimate,
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


def _head_preview(
    job_type: str,
    body: bytes,
    column: str | None,
    *,
    sheet: str | None,
    partial: bool,
    max_rows: int,
    max_bytes: int,
    max_file_bytes: int,
) -> tuple[input_formats.Kind, csv_input.CsvLayout, int, bytes, bool, str | None]:
    """A file's head read as CSV text: (kind, layout, rows counted, text, truncated, sheet read)."""
    job_type = check_type(job_type)
    if len(body) > max_bytes:
        raise input_formats.too_large(max_bytes, "form")
    decoded = decode_upload(body, max_file_bytes=max_file_bytes, sheet=sheet, partial=partial)
    text = read_head(decoded.chunks, DECODED_BYTES + 1)
    truncated = partial or len(text) > DECODED_BYTES
    if truncated:
        # A head may stop inside a row: the rows are those up to its last line break.
        text = text[: text.rfind(b"\n", 0, DECODED_BYTES) + 1]
    if not text.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise InputError("the file is empty, or its head holds no complete row", code="empty_file")
    layout = csv_input.sniff(text[: csv_input.SNIFF_BYTES], job_type, column or None)
    total = intake.count_rows(csv_input.iter_rows([text], layout), max_rows)
    return decoded.kind, layout, total, text, truncated, decoded.sheet
