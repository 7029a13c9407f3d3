"""Result CSV rows: part files written by workers, assembled in input order by the finalizer."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from functions.models import RowResult

BOM = "\ufeff"
# Added after the enrichment columns; the row status is always the second-to-last column (variants read it there).
TRAILER = ("duplicate_of", "status", "error")

# The spreadsheet formula guard (OWASP's CSV-injection advice, made to hold whatever delimiter the file is opened
# with). A spreadsheet runs a field as a formula when it starts with one of TRIGGERS. Fields start at a row's start, at
# each cell's start under the delimiter the file was written with, and, when the file is opened with another delimiter
# (a comma file in German Excel splits at `;`), after any of the four delimiters or a line break inside a cell:
# quoting protects only under the delimiter the file was written with. So the guard puts `'` (which makes the
# spreadsheet read the field as text) before every such start whose text, after spaces, quotes and apostrophes,
# begins with a trigger, or, at a cell's start, with a tab or a line break. One exemption: a cell that is not the
# first of its row and is a plain number or phone number as a whole (digits, spaces and `+-().,/%`: nothing a formula
# could call or reference, such as `+49 30 1234567` or an `e164`) is left alone. Such a cell starts a field only
# under its own delimiter, where the field is exactly that number; under another delimiter its start is inside a
# field begun earlier, which is guarded. A row's first cell gets no exemption: opened with another delimiter, its field
# runs on into the next cells.
TRIGGERS = ("=", "+", "-", "@")
FIELD_BREAKS = re.compile(r"([,;\t|\r\n])")
PLAIN_NUMBER = re.compile(r"[0-9 ()+\-.,/%]*[0-9][0-9 ()+\-.,/%]*")
_LEAD = " \"'"
# A cell starting with none of these and holding no field break cannot need the guard.
_MAY_START = frozenset(" \"'\t\r\n=+-@")
_ANY_BREAK = re.compile(r"[,;\t|\r\n]")


def _runs_as_formula(text: str, *, cell_start: bool = False, exempt_numbers: bool = False) -> bool:
    """Whether a field starting with `text` could run as a formula (after spaces, quotes and apostrophes).

    Apostrophes are skipped so that a guarded field is judged as its original: `guard_cell` and `unguard_cell` then
    undo each other exactly, and a cell that already began with `'=` keeps its apostrophe.
    """
    rest = text.lstrip(_LEAD)
    if not rest:
        return False
    if cell_start and rest[0] in "\t\r\n":
        return True
    return rest[0] in TRIGGERS and not (exempt_numbers and PLAIN_NUMBER.fullmatch(rest))


def _guard_inside(value: str) -> str:
    """The cell with `'` before each field start after a delimiter or line break inside it."""
    pieces = FIELD_BREAKS.split(value)
    # pieces alternate: text, break, text, break, ... ; a text after a break starts a field under some delimiter.
    for i in range(2, len(pieces), 2):
        if _runs_as_formula(pieces[i]):
            pieces[i] = "'" + pieces[i]
    return "".join(pieces)


def _guard_start(original: str, inside: str, first: bool) -> bool:
    """Whether the cell's start needs the guard (`inside`: the cell guarded inside, which must be unchanged for the
    plain-number exemption: a cell such as `-1,-` is not left to look like a number once guarded inside)."""
    return _runs_as_formula(original, cell_start=True, exempt_numbers=not first and inside == original)


def guard_cell(value: str, *, first: bool = False) -> str:
    """The cell with `'` before every field start a spreadsheet could run as a formula, under any delimiter.

    `first`: the cell is the first of its row (no plain-number exemption; see above).
    """
    if not value or (value[0] not in _MAY_START and not _ANY_BREAK.search(value)):
        return value  # the common case, decided in one scan: nothing can start a formula here
    inside = _guard_inside(value)
    return "'" + inside if _guard_start(value, inside, first) else inside


def unguard_cell(value: str, *, first: bool = False) -> str:
    """The cell as it was before `guard_cell` (exactly: `unguard_cell(guard_cell(c)) == c` for every cell)."""
    if "'" not in value:  # the guard only ever adds apostrophes: most cells have none
        return value
    pieces = FIELD_BREAKS.split(value)
    for i in range(2, len(pieces), 2):
        if pieces[i].startswith("'") and _runs_as_formula(pieces[i][1:]):
            pieces[i] = pieces[i][1:]
    original = "".join(pieces)
    if original.startswith("'") and _guard_start(original[1:], _guard_inside(original[1:]), first):
        return original[1:]
    return original


def guard_row(cells: Sequence[str]) -> list[str]:
    """A row's cells, guarded."""
    return [guard_cell(c, first=i == 0) for i, c in enumerate(cells)]


def unguard_row(cells: Sequence[str]) -> list[str]:
    """A guarded row's cells as they were."""
    return [unguard_cell(c, first=i == 0) for i, c in enumerate(cells)]


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
        original = list(row)
        if len(original) < width:
            original += [""] * (width - len(original))
        extra = [cell(result.data.get(col)) for col in enrich_columns]
        trailer = [cell(result.duplicate_of), result.status, result.error or ""]
        writer.writerow(guard_row([*original, *extra, *trailer]))
    return buf.getvalue().encode("utf-8")


def header_bytes(header: Sequence[str], delimiter: str = ",") -> bytes:
    """The result's first line, with the UTF-8 BOM Excel needs to detect the encoding."""
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerow(guard_row(header))
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
