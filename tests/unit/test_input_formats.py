"""Files as customers have them: workbooks, gzip and ZIP files read as the CSV they hold, told apart by content."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
import xlsxwriter

from functions.errors import InputError, PayloadTooLargeError
from functions.logic import input_formats, jobs, preview, splitting
from functions.logic.input_formats import Kind
from functions.models import Batch, JobStatus
from tests.unit.test_splitting import LIMITS, Bucket, SplitStore, uncounted

CSV = b"name,email,phone\r\n" + b"".join(b"P%d,user%d@example.com,+49 30 %07d\r\n" % (i, i, i) for i in range(300))


def source(data: bytes, reads: list[tuple[int, int]] | None = None) -> input_formats.Source:
    def read_at(start: int, length: int) -> bytes:
        if reads is not None:
            reads.append((start, length))
        return data[start : start + length]

    return input_formats.Source(
        data[:65536], lambda: iter([data]), lambda: io.BufferedReader(input_formats.RangeFile(len(data), read_at))
    )


def decoded_rows(data: bytes, **kwargs: Any) -> tuple[Kind, list[list[str]]]:
    import csv

    decoded = input_formats.decode(source(data), max_bytes=kwargs.pop("max_bytes", 1 << 30), **kwargs)
    text = b"".join(decoded.chunks).decode("utf-8-sig")
    text = text.removeprefix("sep=,\r\n")
    return decoded.kind, [row for row in csv.reader(io.StringIO(text, newline="")) if row]


def csv_rows(data: bytes) -> list[list[str]]:
    import csv

    return [row for row in csv.reader(io.StringIO(data.decode(), newline="")) if row]


def workbook(tmp_path: Path, rows: list[list[Any]], **sheets: list[list[Any]]) -> bytes:
    path = tmp_path / "book.xlsx"
    book = xlsxwriter.Workbook(str(path))
    for name, content in {"Leads": rows, **sheets}.items():
        sheet = book.add_worksheet(name)
        for r, row in enumerate(content):
            for c, value in enumerate(row):
                if isinstance(value, tuple):  # (value, number format) or ("=formula", cached value)
                    if str(value[0]).startswith("="):
                        sheet.write_formula(r, c, value[0], None, value[1])
                    elif isinstance(value[0], dt.datetime):
                        sheet.write_datetime(r, c, value[0], book.add_format({"num_format": value[1]}))
                    else:
                        sheet.write_number(r, c, value[0], book.add_format({"num_format": value[1]}))
                elif isinstance(value, str):
                    sheet.write_string(r, c, value)
                elif value is not None:
                    sheet.write_number(r, c, value)
    book.close()
    return path.read_bytes()


def zipped(**files: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# --- kinds by content -----------------------------------------------------------------------------------------------


def test_the_kind_is_told_by_content_not_by_name(tmp_path: Path) -> None:
    assert input_formats.kind_of(gzip.compress(CSV)) is Kind.GZIP
    assert input_formats.kind_of(zipped(**{"leads.csv": CSV})) is Kind.ZIP
    assert input_formats.kind_of(CSV) is Kind.CSV
    # A workbook named .csv is still read as a workbook
    kind, rows = decoded_rows(workbook(tmp_path, [["email"], ["a@example.com"]]))
    assert kind is Kind.XLSX and rows == [["email"], ["a@example.com"]]


@pytest.mark.parametrize(
    ("head", "says"), [(b"\xd0\xcf\x11\xe0\xa1\xb1", ".xls"), (b"%PDF-1.7", "PDF"), (b"BZh91AY", "bzip2")]
)
def test_formats_that_are_not_read_are_refused_with_what_to_send(head: bytes, says: str) -> None:
    with pytest.raises(InputError) as caught:
        input_formats.kind_of(head + b"\0" * 100)
    assert caught.value.code == "unsupported_format" and says in caught.value.message


# --- workbooks ------------------------------------------------------------------------------------------------------


def test_workbook_cells_come_back_as_the_text_excel_shows(tmp_path: Path) -> None:
    # Given a sheet with text that looks like numbers, numbers in formats, a date and a formula with its cached value
    data = workbook(
        tmp_path,
        [
            ["email", "phone", "zip", "zip_number", "count", "price", "share", "signed_up", "total"],
            [
                "a@example.com",
                "+49 30 1234567",
                "00123",
                (123, "00000"),
                42,
                (1234.5, "#,##0.00"),
                (0.256, "0.0%"),
                (dt.datetime(2024, 1, 31), "dd/mm/yyyy"),
                ("=E2*2", 84),
            ],
            ["b@example.com", "", None, None, 1.5, None, None, (dt.datetime(2024, 2, 1, 13, 5), "yyyy-mm-dd hh:mm")],
        ],
    )
    # When it is read
    kind, rows = decoded_rows(data)
    # Then text stays text (the + and the leading zeros), integers have no .0, formats are applied, dates are ISO,
    # the formula is its cached value, and trailing empty cells are dropped
    assert kind is Kind.XLSX
    assert rows[1] == [
        "a@example.com", "+49 30 1234567", "00123", "00123", "42", "1,234.50", "25.6%", "2024-01-31", "84",
    ]  # fmt: skip
    assert rows[2] == ["b@example.com", "", "", "", "1.5", "", "", "2024-02-01 13:05:00"]


def test_a_sheet_is_chosen_by_name_and_an_unknown_one_lists_the_sheets(tmp_path: Path) -> None:
    data = workbook(tmp_path, [["email"], ["first@example.com"]], Second=[["email"], ["second@example.com"]])
    assert decoded_rows(data, sheet="second")[1][1] == ["second@example.com"]
    assert decoded_rows(data)[1][1] == ["first@example.com"]
    with pytest.raises(InputError) as caught:
        decoded_rows(data, sheet="Third")
    assert caught.value.code == "sheet_not_found" and caught.value.details["available"] == ["Leads", "Second"]


@pytest.mark.parametrize(
    ("value", "fmt", "shown"),
    [
        (5.0, "General", "5"),
        (0.1 + 0.2, "General", "0.3"),
        (1e20, "General", "1E+20"),
        (2.5, "0", "3"),
        (-5, "#,##0;(#,##0)", "(5)"),
        (12345.6, '"$"#,##0.00', "$12,345.60"),
        (1234.5, "[$€-407] #,##0.00", "€ 1,234.50"),
        (1.5e10, "0.00E+00", "1.50E+10"),
        (1234567, '#,##0,"K"', "1,235K"),
        (0, '0;-0;"zero"', "zero"),
        (0.5, "# ?/?", "0.5"),
    ],
)
def test_number_formats(value: float, fmt: str, shown: str) -> None:
    assert input_formats.format_number(value, fmt) == shown


# --- gzip -----------------------------------------------------------------------------------------------------------


def test_a_gzip_file_reads_as_the_csv_it_holds_even_of_several_members() -> None:
    data = gzip.compress(CSV[:1000]) + gzip.compress(CSV[1000:])
    assert decoded_rows(data) == (Kind.GZIP, csv_rows(CSV))


def test_a_gzip_bomb_is_refused_at_the_limit_not_inflated_to_its_end() -> None:
    bomb = gzip.compress(b"a@example.com\n" * 1_000_000)  # 14 MB of text in about 30 KB
    decoded = input_formats.decode(source(bomb), max_bytes=1_000_000)
    with pytest.raises(PayloadTooLargeError) as caught:
        for _ in decoded.chunks:
            pass
    assert caught.value.details["max_bytes"] == 1_000_000


def test_the_head_of_a_gzip_file_reads_as_far_as_it_goes() -> None:
    data = gzip.compress(CSV * 20)
    decoded = input_formats.decode(source(data[: len(data) // 2]), max_bytes=1 << 30, partial=True)
    text = b"".join(decoded.chunks)
    assert 0 < len(text) < len(CSV * 20) and (CSV * 20).startswith(text)


# --- ZIP ------------------------------------------------------------------------------------------------------------


def test_a_zip_of_one_csv_reads_as_that_csv_and_mac_leftovers_are_ignored() -> None:
    data = zipped(**{"leads.csv": CSV, "__MACOSX/._leads.csv": b"\0\5", ".DS_Store": b"\0"})
    assert decoded_rows(data) == (Kind.ZIP, csv_rows(CSV))


def test_a_zip_of_one_workbook_reads_as_the_workbook(tmp_path: Path) -> None:
    data = zipped(**{"leads.xlsx": workbook(tmp_path, [["email"], ["a@example.com"]])})
    assert decoded_rows(data) == (Kind.XLSX, [["email"], ["a@example.com"]])


def test_a_zip_of_several_files_names_them_and_asks_for_one() -> None:
    with pytest.raises(InputError) as caught:
        decoded_rows(zipped(**{"a.csv": CSV, "b.csv": CSV}))
    assert caught.value.code == "archive_has_several_files"
    assert caught.value.details["files"] == ["a.csv", "b.csv"] and "a.csv, b.csv" in caught.value.message


def test_a_zip_bomb_is_refused_from_its_directory_before_anything_is_inflated() -> None:
    # Given a ZIP whose one member inflates to 50 MB (its directory says so), read by ranges
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_BZIP2) as archive, archive.open("big.csv", "w") as member:
        for _ in range(50):
            member.write(b"\0" * 1_000_000)
    data = buffer.getvalue()
    assert len(data) < 1024
    reads: list[tuple[int, int]] = []
    # When it is read with a limit of 10 MB
    with pytest.raises(PayloadTooLargeError) as caught:
        input_formats.decode(source(data, reads), max_bytes=10_000_000)
    # Then it is refused with the limit, having read only the directory
    assert caught.value.code == "file_too_large" and caught.value.details["max_bytes"] == 10_000_000
    assert sum(length for _, length in reads) <= 2 * input_formats.RANGE_BYTES


def test_the_head_of_a_zip_cannot_be_previewed() -> None:
    with pytest.raises(InputError) as caught:
        input_formats.decode(source(zipped(**{"a.csv": CSV})[:100]), max_bytes=1 << 30, partial=True)
    assert caught.value.code == "incomplete_archive"


def test_a_damaged_zip_is_a_clear_error() -> None:
    with pytest.raises(InputError) as caught:
        decoded_rows(b"PK\x03\x04" + b"\0" * 200)
    assert caught.value.code == "invalid_archive"


# --- the splitter reads every kind as the CSV -----------------------------------------------------------------------


class RangedBucket(Bucket):
    """The test bucket, with ranged reads (a ZIP's directory is at its end)."""

    def read_range(self, key: str, start: int, length: int, if_match: str | None = None) -> bytes:
        return self.data[start : start + length]


def split_rows(data: bytes) -> tuple[Any, list[list[str]]]:
    store = SplitStore(uncounted())
    finished = splitting.split_job(
        store.job,
        store=store,
        credits=store,
        blobs=RangedBucket(data),
        queue=(sent := _Sent()),
        finalizer=_Finalizer(),
        limits=LIMITS,
    )
    return finished, [row for body in sent.bodies for row in Batch.model_validate_json(body).rows]


class _Sent:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send(self, bodies: list[str]) -> None:
        self.bodies += bodies


class _Finalizer:
    def start(self, job_id: str) -> bool:
        return True


def test_the_splitter_sends_the_same_rows_for_a_csv_its_gzip_its_zip_and_a_workbook(tmp_path: Path) -> None:
    # Given one list as CSV, gzip, ZIP and workbook
    _, expected = split_rows(CSV)
    book = workbook(tmp_path, csv_rows(CSV))
    # When each is split, then each sends the same rows, counted and reserved
    for data in (gzip.compress(CSV), zipped(**{"leads.csv": CSV}), book, zipped(**{"l.xlsx": book})):
        finished, rows = split_rows(data)
        assert finished is not None and finished.total_rows == 300 and finished.status is not JobStatus.FAILED
        assert rows == expected


def test_a_zip_bomb_dropped_in_the_bucket_fails_its_job_with_the_limit() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_BZIP2) as archive, archive.open("big.csv", "w") as member:
        for _ in range(20):
            member.write(b"\0" * 1_000_000)
    store = SplitStore(uncounted())
    limits = splitting.SplitLimits(**{**LIMITS.__dict__, "max_file_bytes": 5_000_000})
    finished = splitting.split_job(
        store.job, store=store, credits=store, blobs=RangedBucket(buffer.getvalue()), queue=_Sent(),
        finalizer=_Finalizer(), limits=limits,
    )  # fmt: skip
    assert finished is not None and (finished.status, finished.error) == (JobStatus.FAILED, "file_too_large")
    assert store.reserved == []


def test_a_gzip_over_the_limit_uploaded_to_storage_fails_its_job_with_the_limit() -> None:
    # Given a gzip whose rows inflate past the limit (nobody reads a presigned upload before the splitter)
    rows = b"email,note\r\n" + b"".join(b"u%d@example.com,%s\r\n" % (i, b"x" * 500) for i in range(20_000))
    store = SplitStore(uncounted())
    limits = splitting.SplitLimits(**{**LIMITS.__dict__, "max_file_bytes": 5_000_000})
    finished = splitting.split_job(
        store.job, store=store, credits=store, blobs=RangedBucket(gzip.compress(rows)), queue=(sent := _Sent()),
        finalizer=_Finalizer(), limits=limits,
    )  # fmt: skip
    # Then the job fails with the limit while counting: nothing reserved, nothing sent
    assert finished is not None and (finished.status, finished.error) == (JobStatus.FAILED, "file_too_large")
    assert store.reserved == [] and sent.bodies == []


# --- the API: creation and preview ----------------------------------------------------------------------------------


def test_a_compressed_form_upload_is_checked_at_once_and_counted_by_the_splitter() -> None:
    checked = jobs.check_upload("email", gzip.compress(CSV), None, max_rows=1000, max_bytes=4 << 20)
    assert checked.kind is Kind.GZIP and checked.total_rows is None and checked.layout.column == "email"
    with pytest.raises(InputError) as caught:
        jobs.check_upload("email", gzip.compress(CSV), "nope", max_rows=1000, max_bytes=4 << 20)
    assert caught.value.code == "column_not_found"


class Balance:
    def account_credits(self, account_id: str) -> int | None:
        return 1_000_000


def test_a_preview_of_a_head_says_so_and_estimates_the_rows() -> None:
    # Given the first 1 MiB of a 5 MB CSV of ~85,000 rows, cut inside a row
    big = b"email\r\n" + b"".join(b"user%06d@example.com\r\n" % i for i in range(220_000))
    head = big[: preview.HEAD_BYTES]
    answer = preview.preview(
        account_id="a", job_type="email", body=head, column=None, max_rows=1_000_000, max_bytes=4 << 20,
        credits=Balance(), enrich=lambda t, v: [_ok() for _ in v], file_size=len(big),
    )  # fmt: skip
    # Then it is a head, its complete rows counted, the whole file's rows estimated
    assert answer["truncated"] is True and answer["format"] == "csv"
    assert answer["total_rows"] == head.count(b"\n") - 1
    assert abs(answer["estimated_total_rows"] - 220_000) < 1_000
    assert answer["rows"][0]["value"] == "user000000@example.com"


def _ok() -> Any:
    from functions.models import RowResult

    return RowResult(status="ok", error=None, data={})
