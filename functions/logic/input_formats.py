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
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any

from functions.errors import InputError, PayloadTooLargeError
from functions.logic.excel_cells import cell_text


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
