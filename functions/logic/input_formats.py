"""Files as customers have them: CSV, gzip, ZIP (one CSV or XLSX inside) and Excel workbooks, told apart by their
first bytes (never their names) and read as one CSV byte stream, so that every format meets the CSV path
(`csv_input`) the same way: the same detection, the same limits, the same errors.

A workbook is converted row by row (openpyxl's read-only mode streams the sheet's XML), each cell as the text Excel
shows. An archive's limit is its uncompressed size: a ZIP's directory declares it, so a ZIP bomb is refused before a
byte of it is inflated (zipfile never inflates a member past its declared size); a gzip stream is inflated in
bounded steps and refused at the first byte past the limit.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import IO, Any

from functions.errors import InputError, PayloadTooLargeError


class Kind(StrEnum):
    """What a file is, by its content."""

    CSV = "csv"
    GZIP = "gzip"
    ZIP = "zip"
    XLSX = "xlsx"


GZIP_MAGIC = b"\x1f\x8b"
# A ZIP starts with a local file header; an empty one is only its end record.
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_LEGACY_SIGNATURES = (
    (b"\xd0\xcf\x11\xe0", "a legacy Excel workbook (.xls); save it as .xlsx or CSV"),
    (b"%PDF", "a PDF document; export the table as CSV or XLSX"),
    (b"BZh", "a bzip2 file; send it as .gz or .zip"),
    (b"7z\xbc\xaf", "a 7-Zip archive; send it as .zip or .gz"),
    (b"Rar!", "a RAR archive; send it as .zip or .gz"),
)
# Files a ZIP made on a Mac or Windows carries beside the real one.
_JUNK = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$|desktop\.ini$)")
# What the converted stream starts with: a UTF-8 BOM and Excel's `sep=` line, so the CSV reader takes the encoding
# and the delimiter as they are instead of guessing them from cell contents.
CONVERTED_PREAMBLE = codecs.BOM_UTF8 + b"sep=,\r\n"
_PIECE_BYTES = 256 * 1024
_INFLATE_STEP = 256 * 1024
# How many member names an error lists.
_NAMES_SHOWN = 20


def kind_of(head: bytes) -> Kind:
    """The kind of a file from its first bytes; a ZIP is told from a workbook when its directory is read."""
    if head.startswith(GZIP_MAGIC):
        return Kind.GZIP
    if head.startswith(ZIP_MAGICS):
        return Kind.ZIP
    for magic, what in _LEGACY_SIGNATURES:
        if head.startswith(magic):
            raise InputError(f"The file is {what}.", code="unsupported_format")
    return Kind.CSV


def too_large(max_bytes: int, what: str = "uncompressed") -> PayloadTooLargeError:
    """The error of a file whose (uncompressed) content is over the limit."""
    return PayloadTooLargeError(
        f"the file's {what} size is over the limit of {max_bytes} bytes", max_bytes=max_bytes, limit=what
    )


def _bad_archive(message: str) -> InputError:
    return InputError(message, code="invalid_archive")


# --- gzip -----------------------------------------------------------------------------------------------------------


def gunzip(chunks: Iterable[bytes], max_bytes: int, *, partial: bool = False) -> Iterator[bytes]:
    """Inflate a gzip stream (several members one after another, as `cat a.gz b.gz` makes, too), in steps of at most
    256 KiB; file_too_large at the first byte past `max_bytes`. With `partial`, a stream that stops early (the head of
    a file) just ends."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = 0
    for chunk in chunks:
        data = chunk
        while data:
            try:
                piece = inflater.decompress(data, _INFLATE_STEP)
            except zlib.error as exc:
                raise _bad_archive(f"The gzip file is damaged: {exc}.") from exc
            out += len(piece)
            if out > max_bytes:
                raise too_large(max_bytes)
            if piece:
                yield piece
            if inflater.eof:
                # The next member, if any, starts in what the finished one left over.
                data = inflater.unused_data
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                if data and not data.startswith(GZIP_MAGIC):
                    return  # trailing garbage (zero padding from some tools): gzip(1) ignores it as well
            else:
                data = inflater.unconsumed_tail
    if out == 0 and not inflater.eof and not partial:
        raise _bad_archive("The gzip file is empty or cut short.")


# --- ZIP and XLSX ---------------------------------------------------------------------------------------------------


def _is_workbook(names: set[str]) -> bool:
    return "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names)


@dataclass(frozen=True)
class Member:
    """The one file of a ZIP that is read."""

    name: str
    size: int


def _open_zip(file: IO[bytes]) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _bad_archive(f"The ZIP file cannot be read: {exc}.") from exc


def zip_member(archive: zipfile.ZipFile, max_bytes: int) -> zipfile.ZipInfo:
    """The one CSV or XLSX in a ZIP, checked against the limit by its declared size; errors name what is there."""
    files = [i for i in archive.infolist() if not i.is_dir() and not _JUNK.search(i.filename)]
    if not files:
        raise InputError("The ZIP file holds no file.", code="empty_file")
    if len(files) > 1:
        names = [i.filename for i in files]
        shown = ", ".join(names[:_NAMES_SHOWN]) + (", ..." if len(names) > _NAMES_SHOWN else "")
        raise InputError(
            f"The ZIP file holds {len(names)} files ({shown}); send a ZIP with one CSV or XLSX file, or that file.",
            code="archive_has_several_files",
            files=names[:_NAMES_SHOWN],
            file_count=len(names),
        )
    member = files[0]
    if member.flag_bits & 0x1:
        raise InputError(f"{member.filename} is encrypted in the ZIP file; send it unencrypted.", code="encrypted_file")
    if member.file_size > max_bytes:
        raise too_large(max_bytes)
    return member


def _check_workbook_size(archive: zipfile.ZipFile, max_bytes: int) -> None:
    if sum(i.file_size for i in archive.infolist()) > max_bytes:
        raise too_large(max_bytes)


def _member_chunks(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> Iterator[bytes]:
    try:
        with archive.open(member) as stream:
            while chunk := stream.read(_PIECE_BYTES):
                yield chunk
    except (zipfile.BadZipFile, NotImplementedError, zlib.error, EOFError, OSError) as exc:
        raise _bad_archive(f"{member.filename} in the ZIP file cannot be read: {exc}.") from exc


# --- one CSV stream from any kind -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A stored or uploaded file: its first bytes, its bytes from the start, and (for archives) random access."""

    head: bytes
    chunks: Callable[[], Iterator[bytes]]
    seekable: Callable[[], IO[bytes]]


@dataclass
class Decoded:
    """What a file is and its content as CSV bytes (a stream: read it once)."""

    kind: Kind
    chunks: Iterator[bytes]
    # The workbook's sheet that is read, or the ZIP member's name.
    sheet: str | None = None
    member: str | None = None


def decode(source: Source, *, max_bytes: int, sheet: str | None = None, partial: bool = False) -> Decoded:
    """The file's content as one CSV byte stream, whatever its kind; `partial`: the source is the head of a file."""
    kind = kind_of(source.head)
    if kind is Kind.CSV:
        return Decoded(kind, source.chunks())
    if kind is Kind.GZIP:
        chunks = gunzip(source.chunks(), max_bytes, partial=partial)
        first = next(chunks, b"")
        inner = kind_of(first)
        if inner is not Kind.CSV:
            raise InputError(
                "The gzip file holds a workbook or an archive; send it as .xlsx or .zip.", code="unsupported_format"
            )
        return Decoded(kind, _prepend(first, chunks))
    if partial:
        raise InputError(
            "A ZIP or XLSX file cannot be read from its head alone; send the whole file (up to the form's limit), "
            "or create the job without a preview.",
            code="incomplete_archive",
        )
    archive = _open_zip(source.seekable())
    if _is_workbook(set(archive.namelist())):
        _check_workbook_size(archive, max_bytes)
        rows, name = workbook_rows(source.seekable(), sheet)
        return Decoded(Kind.XLSX, csv_bytes(rows), sheet=name)
    member = zip_member(archive, max_bytes)
    with archive.open(member) as probe:
        first = probe.read(8)
    if first.startswith(ZIP_MAGICS):
        # A workbook zipped once more: it needs random access, which a member stream gives by reading it again.
        with archive.open(member) as inner_check:
            nested = _open_zip(inner_check)
            if not _is_workbook(set(nested.namelist())):
                raise InputError("The ZIP file holds another ZIP; send the inner file.", code="unsupported_format")
            _check_workbook_size(nested, max_bytes)
        rows, name = workbook_rows(io.BufferedReader(_Reopened(archive, member, max_bytes)), sheet)
        return Decoded(Kind.XLSX, csv_bytes(rows), sheet=name, member=member.filename)
    kind_of(first)  # a PDF or .xls inside is refused as such
    if first.startswith(GZIP_MAGIC):
        raise InputError("The ZIP file holds a gzip file; send one of them, not both.", code="unsupported_format")
    return Decoded(Kind.ZIP, _member_chunks(archive, member), member=member.filename)


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


class _Reopened(io.RawIOBase):
    """A ZIP member as a seekable file (a seek back inflates it again from the start), its size counted."""

    def __init__(self, archive: zipfile.ZipFile, member: zipfile.ZipInfo, max_bytes: int) -> None:
        self.archive, self.member, self.max_bytes = archive, member, max_bytes
        self.stream = archive.open(member)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.stream.seek(offset, whence)

    def tell(self) -> int:
        return self.stream.tell()

    def readinto(self, buffer: Any) -> int:
        data = self.stream.read(len(buffer))
        if self.stream.tell() > self.max_bytes:
            raise too_large(self.max_bytes)
        buffer[: len(data)] = data
        return len(data)


# --- workbooks ------------------------------------------------------------------------------------------------------


def workbook_rows(file: IO[bytes], sheet: str | None) -> tuple[Iterator[list[str]], str]:
    """The rows of a workbook's sheet (`sheet` by name, else the first), each cell as the text Excel shows; formulas
    as their cached values. Read streamingly: memory holds the shared strings and one row."""
    # Imported here: a second of import time that only workbook jobs pay.
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(file, read_only=True, data_only=True, keep_links=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise _bad_archive(f"The workbook cannot be read: {exc}.") from exc
    names = book.sheetnames
    worksheets = book.worksheets
    if sheet is not None and sheet.strip():
        wanted = sheet.strip().casefold()
        chosen = next((ws for ws in worksheets if ws.title.casefold() == wanted), None)
        if chosen is None:
            book.close()
            raise InputError(f"The workbook has no sheet {sheet!r}.", code="sheet_not_found", available=names)
    elif worksheets:
        chosen = worksheets[0]
    else:
        book.close()
        raise InputError("The workbook has no worksheet.", code="empty_file")
    # The stored dimension is often missing or wrong (files written by other tools): read the rows as they are.
    chosen.reset_dimensions()
    return _sheet_rows(book, chosen), str(chosen.title)


def _sheet_rows(book: Any, sheet: Any) -> Iterator[list[str]]:
    try:
        for row in sheet.iter_rows():
            cells = [cell_text(c.value, getattr(c, "number_format", None)) for c in row]
            while cells and not cells[-1]:
                cells.pop()
            yield cells
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, zlib.error) as exc:
        raise _bad_archive(f"The workbook cannot be read: {exc}.") from exc
    finally:
        book.close()


def csv_bytes(rows: Iterable[list[str]]) -> Iterator[bytes]:
    """Rows as a UTF-8 CSV stream that names its delimiter (`sep=,`), in pieces of about 256 KiB."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    yield CONVERTED_PREAMBLE
    for row in rows:
        writer.writerow(row)
        if buffer.tell() >= _PIECE_BYTES:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


# --- cells as Excel shows them --------------------------------------------------------------------------------------

_TIME_CODES = re.compile(r"h|s|am/pm|a/p", re.IGNORECASE)
_QUOTED_OR_ESCAPED = re.compile(r'"[^"]*"|\\.|_.|\*.')
_BRACKETS = re.compile(r"\[[^\]]*\]")
_CURRENCY = re.compile(r"\[\$([^\]-]*)(?:-[^\]]*)?\]")
_TOKENS = re.compile(r'"([^"]*)"|\\(.)|_.|\*.|([0#?][0#?.,]*(?:[Ee][+-][0#?]+)?|\.[0#?]+)|(.)')
_PLACEHOLDERS = re.compile(r"[0#?][0#?,]*(?:\.[0#?]*)?")


def cell_text(value: Any, number_format: str | None) -> str:
    """A cell's value as the text Excel shows for it: integers without `.0`, dates as ISO 8601, numbers in their
    number format (decimals, thousands separators, leading zeros, percent, currency text); text as it is."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        fmt = number_format or ""
        if value.time() == dt.time(0) and not _TIME_CODES.search(_QUOTED_OR_ESCAPED.sub("", fmt)):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.timedelta):
        seconds = round(value.total_seconds())
        sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
        return f"{sign}{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if isinstance(value, int | float):
        return format_number(value, number_format or "General")
    return str(value)


def general(value: float) -> str:
    """Excel's General format: integers without `.0`, at most 15 significant digits (what Excel keeps)."""
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e15):
        return str(int(value))
    return format(value, ".15g").upper().replace("E+0", "E+").replace("E-0", "E-")


def format_number(value: float, number_format: str) -> str:
    """A number in an Excel number format: the common codes (`0`, `0.00`, `#,##0`, `00000`, `0%`, `0.00E+00`,
    literal text, currency); anything else, and `General`, as Excel's General format shows it."""
    sections = _split_sections(number_format)
    section = sections[0]
    if value < 0 and len(sections) > 1 and sections[1]:
        section, value = sections[1], -value
    elif value == 0 and len(sections) > 2 and sections[2]:
        section = sections[2]
    if section.strip().lower() in ("general", "", "@"):
        return general(value)
    literal = _BRACKETS.sub("", _CURRENCY.sub(lambda m: '"' + m.group(1) + '"', section))
    bare = _QUOTED_OR_ESCAPED.sub("", literal)
    if "/" in bare or "?" in bare:  # fractions and aligned digits: shown as General
        return general(value)
    match = _PLACEHOLDERS.search(bare)
    if match is None:  # a section of text only (`0;-0;"zero"`)
        text = "".join(_literal_parts(literal))
        return text or general(value)
    scaled = value * 100 ** bare.count("%")
    scientific = re.search(r"E[+-]", bare, re.IGNORECASE) is not None
    number = _format_digits(scaled, match.group(0), scientific)
    prefix, suffix = _literal_parts(literal)
    return prefix + number + suffix


def _split_sections(number_format: str) -> list[str]:
    sections: list[str] = []
    current: list[str] = []
    quoted = False
    for char in number_format:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            sections.append("".join(current))
            current = []
        else:
            current.append(char)
    sections.append("".join(current))
    return sections


def _format_digits(value: float, pattern: str, scientific: bool) -> str:
    integer, _, fraction = pattern.partition(".")
    decimals = sum(1 for c in fraction if c in "0#?")
    if scientific:
        text = format(value, f".{decimals}E")
        mantissa, _, exponent = text.partition("E")
        return f"{mantissa}E{exponent[0]}{int(exponent[1:]):02d}"
    # A comma after the last digit placeholder divides by 1,000 (`#,##0,` shows thousands).
    trailing = len(integer) - len(integer.rstrip(","))
    value /= 1000**trailing
    integer = integer.rstrip(",")
    grouped = "," in integer
    min_digits = integer.count("0")
    # Excel rounds half away from zero (2.5 shows as 3); the shortest repr is the value Excel stored.
    rounded = Decimal(repr(abs(value))).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    text = format(rounded, f"{',' if grouped else ''}.{decimals}f")
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0").ljust(sum(1 for c in fraction if c == "0"), "0") if "#" in fraction else frac
    digits = whole.replace(",", "")
    if min_digits == 0 and digits == "0":
        whole = ""
    elif len(digits) < min_digits:
        padded = digits.zfill(min_digits)
        whole = format(int(padded), ",").rjust(len(padded), "0") if grouped else padded
    sign = "-" if value < 0 and (whole.strip("0,") or frac.strip("0")) else ""
    return sign + whole + ("." + frac if frac else "")


def _literal_parts(section: str) -> tuple[str, str]:
    """The text a format shows before and after its digits (quoted text, escaped characters, `%`, currency)."""
    before: list[str] = []
    after: list[str] = []
    seen_digits = False
    for token in _TOKENS.finditer(section):
        quoted, escaped, digits, other = token.groups()
        if digits is not None:
            seen_digits = True
            continue
        text = quoted if quoted is not None else escaped if escaped is not None else other
        if text is not None:
            (after if seen_digits else before).append(text)
    return "".join(before), "".join(after)


# --- random access by ranges ----------------------------------------------------------------------------------------

# Bytes a ranged read asks for at a time: a ZIP's directory in one or two requests, a member in pieces of this size.
RANGE_BYTES = 1024 * 1024


class RangeFile(io.RawIOBase):
    """A stored file as a seekable file, read by ranges (`read_at(start, length)`): what a ZIP reader needs, whose
    directory is at the end, without the file on disk or in memory."""

    def __init__(self, size: int, read_at: Callable[[int, int], bytes]) -> None:
        self.size, self.read_at, self.position = size, read_at, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self.size - self.position)
        if wanted <= 0:
            return 0
        data = self.read_at(self.position, wanted)
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)
