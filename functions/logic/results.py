"""Result CSV rows: part files written by workers, assembled in input order by the finalizer."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from functions.models import RowResult

# OWASP's CSV-injection advice: a leading apostrophe makes spreadsheets treat the cell as text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"
TRAILER = ("status", "error")


def escape_cell(value: str) -> str:
    """Neutralize a cell a spreadsheet would run as a formula."""
    return "'" + value if value.startswith(FORMULA_START) else value


def cell(value: Any) -> str:
    """The CSV text of an enrichment value (booleans as true/false, None as empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def result_header(input_header: Sequence[str], width: int, enrich_columns: Sequence[str], job_type: str) -> list[str]:
    """Input columns unchanged (padded to the widest row), then the type's columns, then status and error.

    An added column whose name is already an input column gets the type as prefix, so no input column is shadowed.
    """
    original = list(input_header) + [f"column_{i + 1}" for i in range(len(input_header), width)]
    taken = {name.strip().lower() for name in original}
    added: list[str] = []
    for name in [*enrich_columns, *TRAILER]:
        candidate = name if name.lower() not in taken else f"{job_type}_{name}"
        n = 2
        while candidate.lower() in taken:
            candidate = f"{job_type}_{name}_{n}"
            n += 1
        taken.add(candidate.lower())
        added.append(candidate)
    return original + added


def part_rows(
    rows: Sequence[Sequence[str]],
    results: Sequence[RowResult],
    enrich_columns: Sequence[str],
    width: int,
    delimiter: str = ",",
) -> bytes:
    """A part file: each input row padded to `width`, its enrichment cells, status and error; escaped, no header.

    `delimiter` is the input file's: the result is written the way the customer's spreadsheet reads their file.

    Parts are written final, so assembling the result is a byte concatenation unless some row is wider
    than the header (see `assemble`).
    """
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    for row, result in zip(rows, results, strict=True):
        original = [escape_cell(c) for c in row]
        if len(original) < width:
            original += [""] * (width - len(original))
        extra = [escape_cell(cell(result.data.get(col))) for col in enrich_columns]
        writer.writerow([*original, *extra, result.status, result.error or ""])
    return buf.getvalue().encode("utf-8")


def header_bytes(header: Sequence[str], delimiter: str = ",") -> bytes:
    """The result's first line, with the UTF-8 BOM Excel needs to detect the encoding."""
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerow([escape_cell(h) for h in header])
    return (BOM + buf.getvalue()).encode("utf-8")


def repadded(width: int, n_added: int, parts: Iterable[Iterable[bytes]], delimiter: str = ",") -> Iterator[bytes]:
    """Every part's rows with the input columns padded to `width` (some row was wider than the header), a part at a
    time, in the parts' own `delimiter`."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    for part in parts:
        buf.seek(0)
        buf.truncate()
        text = b"".join(part).decode("utf-8")
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            original, added = row[: len(row) - n_added], row[len(row) - n_added :]
            original += [""] * (width - len(original))
            writer.writerow(original + added)
        yield buf.getvalue().encode("utf-8")


def assemble(
    header: Sequence[str],
    width: int,
    part_width: int,
    n_added: int,
    parts: Iterable[Iterable[bytes]],
    delimiter: str = ",",
) -> Iterator[bytes]:
    """The result CSV in UTF-8 with BOM: header, then every part's rows in order.

    Parts whose rows were padded to `part_width` == `width` are copied as they are. When some row was wider
    than the header (`width` > `part_width`), every row is re-padded so all columns line up.
    """
    yield header_bytes(header, delimiter)
    if width <= part_width:
        for part in parts:
            yield from part
        return
    yield from repadded(width, n_added, parts, delimiter)
