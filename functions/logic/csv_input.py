"""Customer CSV input: detect encoding, delimiter, header and value column from the head, then stream the rows."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from functions.errors import InputError
from functions.logic import csv_columns

SNIFF_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")

# Enough rows to vote on delimiter, header and column without parsing the whole head twice over.
_SAMPLE_ROWS = 200
# Real CSV text has practically no control characters; binary files decoded as cp1252 have about 12 %.
_MAX_CONTROL_SHARE = 0.1
# Big chunks (e.g. `[data]`) are decoded piecewise so the decoded copy stays small.
_PIECE_BYTES = 64 * 1024
# A "line" this long without a line break is not a CSV row; stop before it eats the Lambda's memory.
_MAX_LINE_CHARS = 1024 * 1024
_UTF8_FALLBACK = "bulkapi-cp1252-fallback"
# What spreadsheets export when not UTF-8: the Windows ANSI code pages, KOI8 and the East Asian ones. DOS and Mac
# code pages are left out: they read a short Western file as well as cp1252 does and would win its ties.
_LEGACY_ENCODINGS = (
    "cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "koi8_r", "koi8_u",
    "cp932", "gb18030", "big5", "cp949", "euc_jp",
)  # fmt: skip
# The pages charset-normalizer decides alone; the single-byte ones are weighed by functions/logic/code_pages.py.
_MULTI_BYTE = frozenset(codecs.lookup(name).name for name in ("cp932", "gb18030", "big5", "cp949", "euc_jp"))

# Limits of one data row, so that every accepted file fits a work message and the job's recorded layout.
# Columns: the header is kept on the job item (DynamoDB: 400 KB an item) and sent with every batch.
MAX_COLUMNS = 1_000
# A spreadsheet cell holds at most 32,767 characters. A longer cell is, in practice, a quote that was never
# closed and has swallowed the rows after it: refusing it is what keeps those rows from vanishing silently.
MAX_CELL_CHARS = 32_767
# A row's text; with the header it must fit one SQS message (256 KiB) after JSON encoding.
MAX_ROW_CHARS = 64 * 1024

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_BINARY_SIGNATURES = (
    (b"PK\x03\x04", "an Excel workbook or a ZIP archive"),
    (b"\xd0\xcf\x11\xe0", "a legacy Excel workbook"),
    (b"%PDF", "a PDF document"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_SEP_DIRECTIVE = re.compile(r"sep=([,;\t|])(?:\r\n|\r|\n|$)")


@dataclass(frozen=True)
class CsvLayout:
    """How to read one customer file: codec, delimiter, header and the column holding the values to enrich."""

    encoding: str
    delimiter: str
    has_header: bool
    header: list[str]
    column_index: int
    column: str


def sniff(head: bytes, job_type: str, column: str | None = None) -> CsvLayout:
    """Detect the layout of a CSV file from its first (up to SNIFF_BYTES) bytes; raise InputError when unusable."""
    kinds = csv_columns.JOB_KINDS.get(job_type)
    if kinds is None:
        raise InputError(f"Unknown job type {job_type!r}.", code="invalid_type", allowed=sorted(csv_columns.JOB_KINDS))
    encoding = _detect_encoding(head)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=False)
    _reject_binary(head, text)
    if not text.strip():
        raise InputError("The file is empty.", code="empty_file")
    # A head shorter than SNIFF_BYTES is the whole file; otherwise its last row may be cut off.
    truncated = len(head) >= SNIFF_BYTES
    directive = _SEP_DIRECTIVE.match(text)
    if directive:
        delimiter, text = directive.group(1), text[directive.end() :]
    else:
        delimiter = _sniff_delimiter(text, truncated)
    rows = _sample_rows(text, delimiter, truncated)
    if not rows:
        if truncated:
            if max(text.count(d) for d in DELIMITERS) >= MAX_COLUMNS:
                raise _too_many_columns(1, max(text.count(d) for d in DELIMITERS) + 1)
            raise InputError("No line break in the first 64 KiB: this is not a CSV file.", code="not_csv")
        raise InputError("The file has no non-empty rows.", code="empty_file")
    widest = max(len(row) for row in rows)
    if widest > MAX_COLUMNS:
        raise _too_many_columns(1 + next(n for n, row in enumerate(rows) if len(row) == widest), widest)
    has_header = csv_columns.looks_like_header(rows[0], rows[1:])
    data = rows[1:] if has_header else rows
    if has_header and not data and not truncated:
        raise InputError("The file has a header row but no data rows.", code="no_rows")
    header = rows[0] if has_header else csv_columns.generated_names(data)
    index = csv_columns.choose_column(header, data, job_type, kinds, column)
    return CsvLayout(encoding, delimiter, has_header, header, index, header[index])


def iter_rows(chunks: Iterable[bytes], layout: CsvLayout) -> Iterator[list[str]]:
    """Stream the whole file and yield its data rows (header and blank rows skipped), in bounded memory.

    Raises InputError for a row over the limits (MAX_COLUMNS, MAX_CELL_CHARS, MAX_ROW_CHARS) and for a quote
    still open at the end of the file, so a stray quote can never swallow the rest of the file unnoticed.
    """
    lines = _RecordLines(_skip_sep_directive(_iter_lines(chunks, layout.encoding), layout.delimiter))
    reader = csv.reader(lines, delimiter=layout.delimiter)
    skip_header = layout.has_header
    try:
        for row in reader:
            if lines.exhausted and _ends_inside_quotes("".join(lines.record), layout.delimiter):
                raise InputError(
                    f"A quote opened on line {reader.line_num - lines.record_lines() + 1} is never closed: "
                    "the rest of the file would be read as one cell. Close or remove the quote and retry.",
                    code="malformed_csv",
                    line=reader.line_num - lines.record_lines() + 1,
                )
            lines.record.clear()
            if _is_blank(row):
                continue
            _check_row(row, reader.line_num)
            if skip_header:
                skip_header = False
                continue
            yield row
    except csv.Error as exc:
        raise InputError(f"The CSV is malformed near line {reader.line_num}: {exc}.", code="malformed_csv") from exc


def _too_many_columns(line: int, width: int) -> InputError:
    return InputError(
        f"Line {line} has {width} columns; files may have at most {MAX_COLUMNS}.",
        code="too_many_columns",
        max_columns=MAX_COLUMNS,
        line=line,
    )


def _check_row(row: list[str], line: int) -> None:
    if len(row) > MAX_COLUMNS:
        raise _too_many_columns(line, len(row))
    size = sum(map(len, row))
    if size <= MAX_CELL_CHARS:
        return
    longest = max(map(len, row))
    if longest > MAX_CELL_CHARS:
        raise InputError(
            f"A cell ending on line {line} has {longest} characters, more than a spreadsheet cell holds "
            f"({MAX_CELL_CHARS}); most likely a quote before it is never closed.",
            code="malformed_csv",
            max_cell_chars=MAX_CELL_CHARS,
            line=line,
        )
    if size > MAX_ROW_CHARS:
        raise InputError(
            f"The row ending on line {line} has {size} characters; rows may have at most {MAX_ROW_CHARS}.",
            code="row_too_large",
            max_row_chars=MAX_ROW_CHARS,
            line=line,
        )


class _RecordLines:
    """The lines csv.reader pulls, remembering those of the record being read and whether the input has ended."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.record: list[str] = []
        self.exhausted = False

    def __iter__(self) -> _RecordLines:
        return self

    def __next__(self) -> str:
        try:
            line = next(self._lines)
        except StopIteration:
            self.exhausted = True
            raise
        self.record.append(line)
        return line

    def record_lines(self) -> int:
        """How many lines the current record spans."""
        return max(1, len(self.record))


_QUOTED = re.compile(r'"[^"]*(?:""[^"]*)*')


def _ends_inside_quotes(record: str, delimiter: str) -> bool:
    """Whether a record (the file's last) ends inside a quoted cell, read as csv.reader's default dialect does.

    csv.reader (non-strict) silently closes such a cell at the end of the input; the rest of the file is then in it.
    """
    unquoted = re.compile(f"[^{re.escape(delimiter)}\r\n]*")
    pos, end = 0, len(record)
    while pos < end:
        if record[pos] == '"':
            quoted = _QUOTED.match(record, pos)
            assert quoted is not None  # the pattern matches the opening quote at least
            pos = quoted.end()
            if pos >= end:
                return True
            pos += 1  # the closing quote; what follows up to the next delimiter is plain text (non-strict)
        match = unquoted.match(record, pos)
        assert match is not None  # `*`: matches the empty string at least
        pos = match.end() + 1  # the delimiter or line break that ends the cell
    return False


# --- encoding -------------------------------------------------------------------------------------------------------


def _detect_encoding(head: bytes) -> str:
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    try:
        # Not final: the head may stop in the middle of a multi-byte character, which is still valid UTF-8.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return _legacy_encoding(head)
    return "utf-8"


def _legacy_encoding(head: bytes) -> str:
    # Legacy Excel on Windows writes the ANSI code page of the user's language: cp1250 (Polish, Czech), cp1251
    # (Cyrillic), cp1252 (Western Europe)... charset-normalizer tells the East Asian multi-byte pages apart. Among the
    # single-byte pages it often has no answer, or the wrong one, for short files (a Polish name list read as cp1252,
    # a Turkish one as cp1250): code_pages picks the page whose reading looks like words of a language. Bytes that
    # read the same in every page (a Western file whose `é` is `é` in cp1250 too) leave cp1252, the most common.
    # No guess at all (binary data) also falls back to cp1252, and _reject_binary has the last word.
    # Imported at the first file that is not UTF-8 (rare): charset-normalizer and the code-page tables built from it
    # cost every function that reads a CSV 9 ms of its cold start.
    import charset_normalizer

    from functions.logic import code_pages

    matches = charset_normalizer.from_bytes(head, cp_isolation=list(_LEGACY_ENCODINGS))
    best = matches.best()
    as_good = {
        codecs.lookup(m.encoding).name
        for m in matches
        if best and (m.chaos, m.coherence) == (best.chaos, best.coherence)
    }
    reading = code_pages.best_page(head)
    if best is not None and codecs.lookup(best.encoding).name in _MULTI_BYTE:
        # A few bytes read as a couple of CJK characters as well as anything: then only a confident reading in a
        # single-byte page (`Иван` in cp1251, not in cp949) takes its place.
        tied = not as_good <= _MULTI_BYTE
        if not (tied and reading is not None and reading.mean > code_pages.CONFIDENT):
            return codecs.lookup(best.encoding).name
    if reading is not None:
        return codecs.lookup(reading.page).name
    if best is None or "cp1252" in as_good | set(best.could_be_from_charset):
        return "cp1252"
    return codecs.lookup(best.encoding).name


def _reject_binary(head: bytes, text: str) -> None:
    controls = len(_CONTROL.findall(text))
    if "\x00" not in text and controls <= _MAX_CONTROL_SHARE * len(text):
        return
    kind = next((name for magic, name in _BINARY_SIGNATURES if head.startswith(magic)), "a binary file")
    raise InputError(f"The file is not CSV text (it looks like {kind}); export it as CSV and retry.", code="not_csv")


def _cp1252_fallback(exc: UnicodeError) -> tuple[str, int]:
    # A file whose first 64 KiB are ASCII can still hold cp1252 names further down: decode those bytes as cp1252
    # instead of failing the job halfway or turning "José" into "Jos\ufffd".
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start : exc.end].decode("cp1252", errors="replace"), exc.end


codecs.register_error(_UTF8_FALLBACK, _cp1252_fallback)


def _iter_lines(chunks: Iterable[bytes], encoding: str) -> Iterator[str]:
    errors = _UTF8_FALLBACK if encoding.startswith("utf-8") else "replace"
    decoder = codecs.getincrementaldecoder(encoding)(errors=errors)
    pending = ""
    for chunk in chunks:
        for start in range(0, len(chunk), _PIECE_BYTES):
            lines, pending = _complete_lines(pending + decoder.decode(chunk[start : start + _PIECE_BYTES]))
            yield from lines
    tail = pending + decoder.decode(b"", final=True)
    if tail:
        yield tail


def _complete_lines(text: str) -> tuple[list[str], str]:
    # newline="" splits on \n, \r and \r\n and keeps them, which csv needs for newlines inside quoted fields.
    lines = io.StringIO(text, newline="").readlines()
    if not lines or lines[-1].endswith("\n"):
        return lines, ""
    # The last line is unterminated, or ends in a "\r" whose "\n" may be in the next chunk: keep it for later.
    if len(lines[-1]) > _MAX_LINE_CHARS:
        raise InputError("A line of the file is longer than 1 MiB: this is not a CSV file.", code="malformed_csv")
    return lines[:-1], lines[-1]


def _skip_sep_directive(lines: Iterator[str], delimiter: str) -> Iterator[str]:
    # Excel's "sep=;" first line names the delimiter; it is not a row.
    first = next(lines, None)
    if first is None:
        return
    if first.rstrip("\r\n") != f"sep={delimiter}":
        yield first
    yield from lines


# --- rows, delimiter, header ------------------------------------------------------------------------------------------


def _is_blank(row: list[str]) -> bool:
    return not any(cell.strip() for cell in row)


def _sample_rows(text: str, delimiter: str, truncated: bool) -> list[list[str]]:
    rows: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            if not _is_blank(row):
                rows.append(row)
            if len(rows) > _SAMPLE_ROWS:
                # A row followed by another is complete, even in a truncated head.
                return rows[:_SAMPLE_ROWS]
    except csv.Error:
        # A truncated head can stop inside a quoted field; the rows before it are still good.
        pass
    return rows[:-1] if truncated else rows


def _sniff_delimiter(text: str, truncated: bool) -> str:
    # The delimiter is the one that splits the rows into the same number of cells most consistently; csv.reader
    # does the counting so that delimiters inside quoted fields do not count.
    best, best_score = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        widths = Counter(len(row) for row in _sample_rows(text, delimiter, truncated))
        if not widths:
            continue
        width, rows = widths.most_common(1)[0]
        score = (rows / widths.total(), width)
        if width > 1 and score > best_score:
            best, best_score = delimiter, score
    return best
