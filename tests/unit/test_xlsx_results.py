"""Results as a workbook (`format=xlsx`): text cells stay text, the header is frozen, columns are sized."""

from __future__ import annotations

import io

import openpyxl

from functions.logic import downloads, results, variants
from functions.logic.variants import Variant
from tests.unit.test_variants import JOB, RESULT, Bucket, Queue, Store, ask, job


def result_with(rows: list[list[str]], delimiter: str = ";") -> bytes:
    header = ["Name", "Phone", "Zip", "status", "error"]
    head = results.header_bytes(header, delimiter)
    lines = "".join(
        delimiter.join(f'"{c}"' if ";" in c else c for c in results.guard_row(row)) + "\r\n" for row in rows
    )
    return head + lines.encode("utf-8")


ROWS = [
    ["Zoë", "+49 30 1234567", "00123", "ok", ""],
    ["=HYPERLINK(x)", "0049 30 1", "007", "invalid", "invalid_phone"],
    ["A much longer name than the others, long enough to widen its column", "+1 555 0100", "10001", "ok", ""],
]


def built_workbook(variant: Variant) -> tuple[openpyxl.Workbook, variants.Built]:
    store, bucket = Store([job()]), Bucket({RESULT: result_with(ROWS)})
    assert variants.build(JOB, variant.name, store=store, blobs=bucket) == "built"
    data = bucket.objects[f"results/acct_a/{JOB}/{variant.name}"]
    return openpyxl.load_workbook(io.BytesIO(data)), variants.Built(
        store.records[variant.name]["rows"], store.records[variant.name]["size"]
    )


def test_a_workbook_keeps_every_cell_as_text_with_the_header_frozen_and_columns_sized() -> None:
    # When the result is built as a workbook
    book, built = built_workbook(variants.parse(job(), None, "xlsx", None))
    sheet = book.worksheets[0]
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    # Then every row is there, each cell the text it was: the + and the leading zeros survive, and a formula-like
    # cell is text (no apostrophe guard: a text cell is never evaluated)
    assert cells[0] == ["Name", "Phone", "Zip", "status", "error"]
    assert cells[1][:3] == ["Zoë", "+49 30 1234567", "00123"]
    assert cells[2][:3] == ["=HYPERLINK(x)", "0049 30 1", "007"]
    assert all(c.data_type == "s" for row in sheet.iter_rows(min_row=2) for c in row if c.value)
    assert built.rows == 3 and built.size > 0
    # And the header is frozen, the long column wider than the short ones
    assert sheet.freeze_panes == "A2"
    widths = {k: v.width for k, v in sheet.column_dimensions.items()}
    assert widths["A"] > widths["C"] >= 8


def test_a_workbook_of_some_statuses_keeps_only_those_rows() -> None:
    book, built = built_workbook(variants.parse(job(), "ok", "xlsx", None))
    names = [row[0] for row in book.worksheets[0].iter_rows(min_row=2, values_only=True)]
    assert built.rows == 2 and names[0] == "Zoë" and len(names) == 2


def test_a_workbook_is_delivered_by_link_whatever_its_size() -> None:
    store, bucket, queue = Store([job()]), Bucket({RESULT: result_with(ROWS)}), Queue()
    wanted = variants.parse(job(), None, "xlsx", None)
    assert wanted.name == "all.xlsx" and isinstance(ask(store, bucket, queue, wanted), downloads.Pending)
    variants.build(JOB, wanted.name, store=store, blobs=bucket)
    ready = ask(store, bucket, queue, wanted)
    assert isinstance(ready, downloads.Delivery) and ready.body is None and ready.url is not None
    assert ready.filename == "leads.enriched.xlsx" and ready.content_type == variants.XLSX_TYPE


def test_a_workbook_of_one_email_verdict_keeps_the_rows_of_that_segment() -> None:
    # Given an email result (every enrichment column) with valid, invalid and unknown rows
    from functions.enrich import result_columns
    from functions.models import RowResult

    columns = result_columns("email")
    inputs = [["Zoë"], ["Bad"], ["Timeout"], ["Line\nbreak"]]
    verdicts = [("ok", "valid"), ("invalid", "invalid"), ("error", None), ("ok", "valid")]
    outcomes = [RowResult(status=status, data={"validity": verdict}) for status, verdict in verdicts]
    data = results.header_bytes(["Name", *columns, *results.TRAILER], ";") + results.part_rows(
        inputs, outcomes, columns, 1, ";"
    )
    store, bucket = Store([job()]), Bucket({RESULT: data})
    wanted = variants.parse(job(), None, "xlsx", None, "valid")
    # When its valid segment is built as a workbook
    assert variants.build(JOB, wanted.name, store=store, blobs=bucket) == "built"
    book = openpyxl.load_workbook(io.BytesIO(bucket.objects[f"results/acct_a/{JOB}/{wanted.name}"]))
    names = [row[0] for row in book.worksheets[0].iter_rows(min_row=2, values_only=True)]
    # Then it holds exactly the valid rows, as the CSV segment does
    assert names == ["Zoë", "Line\nbreak"] and store.records[wanted.name]["rows"] == 2
