"""Variants of a result: only some row statuses or verdicts, another delimiter, or JSON Lines; built by streaming,
kept once.

A variant is derived from the assembled result, never from the parts (those are staging files, kept a week), and
is written next to it (`results/<account>/<job>/<name>`), so the bucket's retention rule keeps both alike.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from functions.errors import InputError
from functions.logic import bucket_keys, results
from functions.logic.clock import utcnow
from functions.logic.ports import VariantBlobPort, VariantBuildStorePort, Writer
from functions.logic.summary import VERDICTS, email_verdict, verdict_offset
from functions.models import Job
from functions.observability import logger

STATUSES: tuple[str, ...] = ("ok", "invalid", "error")
DELIMITERS: dict[str, str] = {"comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|"}
FORMATS: tuple[str, ...] = ("csv", "jsonl", "xlsx")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
GUARD_VALUES: tuple[str, ...] = ("on", "off")
UNGUARDED = "unguarded"
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8", "xlsx": XLSX_TYPE}
# A workbook's columns are sized to their longest cell, within these widths (in characters).
_XLSX_WIDTHS = (8, 60)
# Output is handed to the writer in pieces of about this size: memory stays flat whatever the result's size.
_FLUSH_CHARS = 1024 * 1024
_PIECE_BYTES = 256 * 1024


@dataclass(frozen=True)
class Variant:
    """Which rows (by row status and, for emails, by verdict), which format and, for CSV, which delimiter."""

    statuses: tuple[str, ...]
    format: str
    delimiter: str | None
    # Email verdicts kept (summary.VERDICTS); empty: every row whatever its verdict.
    validity: tuple[str, ...] = ()
    # The spreadsheet formula guard (results.guard_cell): CSV only, on unless asked off; JSON Lines and workbooks
    # never have it.
    guard: bool = True

    @property
    def name(self) -> str:
        """`ok-invalid.semicolon.csv`, `all+valid-risky.jsonl`, `all.comma.unguarded.csv`: the variant's id, its key's
        end."""
        rows = "all" if self.statuses == STATUSES else "-".join(self.statuses)
        if self.validity:
            rows += "+" + "-".join(self.validity)
        if self.format != "csv":
            return f"{rows}.{self.format}"
        return f"{rows}.{self.delimiter}.csv" if self.guard else f"{rows}.{self.delimiter}.{UNGUARDED}.csv"

    @property
    def segment(self) -> str:
        """What the file name says of the rows it holds: `valid`, `ok`, `ok.valid-risky`; empty for every row."""
        parts = [] if self.statuses == STATUSES else ["-".join(self.statuses)]
        return ".".join([*parts, "-".join(self.validity)] if self.validity else parts)

    @classmethod
    def from_name(cls, name: str) -> Variant:
        """The variant a name stands for (the inverse of `name`)."""
        parts = name.split(".")
        rows, _, verdicts = parts[0].partition("+")
        statuses = STATUSES if rows == "all" else tuple(rows.split("-"))
        validity = tuple(verdicts.split("-")) if verdicts else ()
        csv_file = parts[-1] == "csv"
        guard = csv_file and UNGUARDED not in parts
        return cls(statuses, parts[-1], parts[1] if csv_file else None, validity, guard)

    def view(self) -> dict[str, Any]:
        """How the status lists it."""
        return {
            "name": self.name,
            "status": list(self.statuses),
            "validity": list(self.validity) or None,
            "format": self.format,
            "delimiter": self.delimiter,
            "formula_guard": self.guard,
        }


def delimiter_name(delimiter: str | None) -> str:
    """`;` -> `semicolon`; a job read before delimiters were recorded wrote commas."""
    return next((name for name, char in DELIMITERS.items() if char == delimiter), "comma")


def base_variant(job: Job) -> Variant:
    """What the assembled result itself is: every row, CSV, with the input file's delimiter."""
    return Variant(STATUSES, "csv", delimiter_name(job.delimiter))


def _invalid(parameter: str, message: str, allowed: Iterable[str]) -> InputError:
    return InputError(message, code="invalid_parameter", parameter=parameter, allowed=list(allowed))


def _validity(job: Job, validity: str | None) -> tuple[str, ...]:
    if not validity:
        return ()
    if verdict_offset(job.type) is None:
        message = f"validity applies to email jobs; this job is a {job.type} job"
        raise InputError(message, code="invalid_parameter", parameter="validity")
    asked = {v.strip().lower() for v in validity.split(",") if v.strip()}
    if not asked or not asked <= set(VERDICTS):
        message = "validity must be a comma-separated list of valid, risky, invalid, unknown"
        raise _invalid("validity", message, VERDICTS)
    # Every verdict is every row: the same file as no filter, so the same variant.
    return () if asked == set(VERDICTS) else tuple(v for v in VERDICTS if v in asked)


def _statuses(status: str | None) -> tuple[str, ...]:
    if not status:
        return STATUSES
    asked = {s.strip().lower() for s in status.split(",") if s.strip()}
    if asked and asked <= set(VERDICTS) - set(STATUSES):
        # `status=valid`: a verdict asked for as a row status (what customers of other verifiers type first).
        raise _invalid("status", f"{', '.join(sorted(asked))}: a verdict; ask for it with validity=", STATUSES)
    if not asked or not asked <= set(STATUSES):
        raise _invalid("status", "status must be a comma-separated list of ok, invalid, error", STATUSES)
    return tuple(s for s in STATUSES if s in asked)


def parse(
    job: Job,
    status: str | None,
    fmt: str | None,
    delimiter: str | None,
    validity: str | None = None,
    formula_guard: str | None = None,
) -> Variant:
    """The variant a download asks for; each parameter left out means the result as it is."""
    statuses = _statuses(status)
    verdicts = _validity(job, validity)
    chosen_format = (fmt or "csv").strip().lower()
    if chosen_format not in FORMATS:
        raise _invalid("format", "format must be csv, jsonl or xlsx", FORMATS)
    guard = (formula_guard or "on").strip().lower()
    if guard not in GUARD_VALUES:
        raise _invalid("formula_guard", "formula_guard must be on or off", GUARD_VALUES)
    if chosen_format != "csv":
        if delimiter:
            raise _invalid("delimiter", "delimiter applies to format=csv only", DELIMITERS)
        if formula_guard:
            raise _invalid("formula_guard", "formula_guard applies to format=csv only (JSON Lines has none)", ())
        return Variant(statuses, chosen_format, None, verdicts, guard=False)
    chosen = (delimiter or delimiter_name(job.delimiter)).strip().lower()
    if chosen not in DELIMITERS:
        raise _invalid("delimiter", "delimiter must be comma, semicolon, tab or pipe", DELIMITERS)
    return Variant(statuses, "csv", chosen, verdicts, guard=guard == "on")


# --- the streaming transformation --------------------------------------------------------------------------------


def _lines(chunks: Iterable[bytes]) -> Iterator[str]:
    # The result is UTF-8 with a BOM; lines keep their endings so csv can read line breaks inside quoted cells.
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    for chunk in chunks:
        for start in range(0, len(chunk), _PIECE_BYTES):
            text = pending + decoder.decode(chunk[start : start + _PIECE_BYTES])
            lines = io.StringIO(text, newline="").readlines()
            pending = lines.pop() if lines and not lines[-1].endswith("\n") else ""
            yield from lines
    tail = pending + decoder.decode(b"", final=True)
    if tail:
        yield tail


def _json_keys(header: list[str]) -> list[str]:
    keys: list[str] = []
    for name in results.unguard_row(header):
        key, n = name, 2
        while key in keys:
            key, n = f"{name}_{n}", n + 1
        keys.append(key)
    return keys


@dataclass
class Built:
    """What a transformation wrote: rows (without the header) and bytes."""

    rows: int = 0
    size: int = 0


def transform(
    chunks: Iterable[bytes], source_delimiter: str, variant: Variant, built: Built, verdict_at: int | None = None
) -> Iterator[bytes]:
    """Read a result CSV as a stream and yield the variant's bytes, counting into `built`; memory stays flat.

    `verdict_at` is where an email row's `validity` cell is, from the row's end (summary.verdict_offset).
    """
    reader = csv.reader(_lines(chunks), delimiter=source_delimiter)
    header = next(reader, None)
    if header is None:
        return
    if variant.validity and verdict_at is None:
        raise ValueError("a validity filter needs the position of the validity cell")
    buf = io.StringIO()
    keys = _json_keys(header)
    writer = csv.writer(buf, delimiter=DELIMITERS[variant.delimiter or "comma"], lineterminator="\r\n")
    # The result is stored guarded against every delimiter, so a guarded variant copies its cells as they are.
    if variant.format == "csv":
        buf.write(results.BOM)
        writer.writerow(header if variant.guard else results.unguard_row(header))
    for row in _kept(reader, variant, verdict_at):
        built.rows += 1
        if variant.format == "csv":
            writer.writerow(row if variant.guard else results.unguard_row(row))
        else:
            cells = results.unguard_row(row)
            buf.write(json.dumps(dict(zip(keys, cells, strict=False)), ensure_ascii=False) + "\n")
        if buf.tell() >= _FLUSH_CHARS:
            data = buf.getvalue().encode("utf-8")
            built.size += len(data)
            yield data
            buf.seek(0)
            buf.truncate()
    data = buf.getvalue().encode("utf-8")
    built.size += len(data)
    yield data


def _kept(rows: Iterable[list[str]], variant: Variant, verdict_at: int | None) -> Iterator[list[str]]:
    """The result rows the variant keeps: by row status, then by verdict (CSV, JSON lines and workbooks alike)."""
    keep = set(variant.statuses)
    verdicts = set(variant.validity)
    for row in rows:
        # The row status is the second-to-last column of every result row (then the error code).
        if len(row) < 2 or row[-2] not in keep:
            continue
        # The same reading of the cell as the summary's, so the segments' rows add up to its counts.
        if verdicts and _verdict(row, verdict_at) not in verdicts:
            continue
        yield row


def _verdict(row: list[str], verdict_at: int | None) -> str:
    return email_verdict(row[verdict_at] if verdict_at and len(row) >= -verdict_at else "")


class _Sink:
    """The file object xlsxwriter writes the finished workbook to: each write goes on to the object writer."""

    def __init__(self, writer: Writer, built: Built) -> None:
        self.writer, self.built = writer, built

    def write(self, data: bytes) -> int:
        self.writer.write(bytes(data))
        self.built.size += len(data)
        return len(data)

    def flush(self) -> None:
        """Nothing is held here."""


def write_xlsx(
    chunks: Iterable[bytes],
    source_delimiter: str,
    variant: Variant,
    built: Built,
    out: Writer,
    verdict_at: int | None = None,
) -> None:
    """Read a result CSV as a stream and write it to `out` as a workbook: every cell a text cell (so `+49 30 ...`,
    `00123` and `=...` stay what they were, with no formula guard), the header row frozen, columns sized to their
    cells. xlsxwriter's constant_memory mode keeps one row in memory (the sheet's XML goes to a temporary file, which
    is zipped into `out` at the end)."""
    import xlsxwriter  # here: only workbook builds pay its import

    reader = csv.reader(_lines(chunks), delimiter=source_delimiter)
    header = next(reader, None)
    book = xlsxwriter.Workbook(
        _Sink(out, built),
        {"constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False},
    )
    sheet = book.add_worksheet("enriched")
    bold = book.add_format({"bold": True})
    widths: list[int] = []

    def put(number: int, row: list[str], style: Any = None) -> None:
        for column, cell in enumerate(results.unguard_row(row)):
            sheet.write_string(number, column, cell, style)
            if column >= len(widths):
                widths.append(0)
            widths[column] = max(widths[column], len(cell))

    if header is not None:
        put(0, header, bold)
        sheet.freeze_panes(1, 0)
        for row in _kept(reader, variant, verdict_at):
            built.rows += 1
            put(built.rows, row)
    low, high = _XLSX_WIDTHS
    for column, width in enumerate(widths):
        sheet.set_column(column, column, min(high, max(low, width + 2)))
    book.close()


# --- the build ----------------------------------------------------------------------------------------------------


def build(job_id: str, name: str, *, store: VariantBuildStorePort, blobs: VariantBlobPort) -> str:
    """Build one variant from the result and record it ready; what happened (for logs and tests).

    A second request for the same variant (a redelivered message) finds it ready and does nothing. A job deleted
    while its variant was being built gets no record, and the file just written is deleted again.
    """
    job = store.get_job(job_id)
    if job is None or job.purging_at is not None or job.result_key is None:
        return "no_job"
    existing = store.get_variant(job_id, name)
    if existing is not None and existing.get("state") == "ready":
        return "exists"
    if blobs.head(job.result_key) is None:
        logger.info("variant not built: the result has expired", job_id=job_id, variant=name)
        return "expired"
    variant = Variant.from_name(name)
    key = bucket_keys.variant_key(job, variant.name)
    built = Built()
    writer = blobs.writer(key, CONTENT_TYPES[variant.format].split(";")[0])
    try:
        rows = blobs.stream(job.result_key)
        if variant.format == "xlsx":
            write_xlsx(rows, job.delimiter or ",", variant, built, writer, verdict_offset(job.type))
        else:
            for data in transform(rows, job.delimiter or ",", variant, built, verdict_offset(job.type)):
                writer.write(data)
        writer.close()
    except Exception:
        writer.abort()
        raise
    if not store.record_variant(job_id, name, key=key, rows=built.rows, size=built.size, now=utcnow()):
        blobs.purge(key, exact=True)
        return "no_job"
    logger.info("variant built", job_id=job_id, variant=name, rows=built.rows, bytes=built.size)
    return "built"
