"""Result CSV writing: column order, padding, escaping against formula injection, BOM, assembly."""

from __future__ import annotations

import csv
import io

from functions.logic import results
from functions.models import RowResult


def read(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_formula_cells_are_escaped_and_plain_cells_untouched() -> None:
    # Given cells a spreadsheet would execute, and ordinary ones
    dangerous = ['=HYPERLINK("http://x")', "+1 555", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]
    # When they are escaped
    escaped = [results.escape_cell(c) for c in dangerous]
    # Then each starts with an apostrophe, and escaping again changes nothing
    assert all(e.startswith("'") and e[1:] == c for e, c in zip(escaped, dangerous, strict=True))
    assert [results.escape_cell(e) for e in escaped] == escaped
    assert results.escape_cell("ada@example.com") == "ada@example.com"
    assert results.escape_cell("") == ""


def test_header_keeps_input_columns_and_renames_colliding_added_ones() -> None:
    # Given an input that already has a `status` and a `domain` column
    header = results.result_header(["Email", "status", "domain"], 4, ["domain", "validity"], "email")
    # Then the input columns stay as they are (padded to the widest row) and added ones get a prefix
    assert header == ["Email", "status", "domain", "column_4", "email_domain", "validity", "email_status", "error"]


def test_part_rows_pad_short_rows_escape_and_end_with_status_and_error() -> None:
    # Given a ragged batch with a formula in an original cell and a multi-line note
    rows = [["=cmd()", "a@b.com"], ["x"], ["note\r\nline 2", "c@d.com"]]
    outcome = [
        RowResult(status="ok", data={"validity": "valid", "is_role": False}),
        RowResult(status="invalid", error="invalid_email", data={"validity": "invalid"}),
        RowResult(status="ok", data={"validity": "valid", "is_role": True}),
    ]
    # When the part is written for a 2-column header
    data = results.part_rows(rows, outcome, ["validity", "is_role"], 2)
    # Then each row has 2 original cells, then the type's columns, then status and error
    assert read(data) == [
        ["'=cmd()", "a@b.com", "valid", "false", "ok", ""],
        ["x", "", "invalid", "", "invalid", "invalid_email"],
        ["note\r\nline 2", "c@d.com", "valid", "true", "ok", ""],
    ]


def test_assemble_concatenates_parts_in_order_with_a_bom_header() -> None:
    # Given two parts written for a 1-column header
    p0 = results.part_rows([["a@x.com"]], [RowResult(status="ok", data={"v": 1})], ["v"], 1)
    p1 = results.part_rows([["b@x.com"]], [RowResult(status="ok", data={"v": 2})], ["v"], 1)
    # When they are assembled
    data = b"".join(results.assemble(["email", "v", "status", "error"], 1, 1, 3, [[p0], [p1]]))
    # Then the file starts with a UTF-8 BOM and holds the rows in part order
    assert data.startswith(b"\xef\xbb\xbf")
    assert read(data) == [["email", "v", "status", "error"], ["a@x.com", "1", "ok", ""], ["b@x.com", "2", "ok", ""]]


def test_assemble_realigns_when_a_row_is_wider_than_the_header() -> None:
    # Given a part whose second row has an extra cell beyond the 1-column header
    part = results.part_rows(
        [["a@x.com"], ["b@x.com", "extra"]], [RowResult(status="ok"), RowResult(status="ok")], [], 1
    )
    # When assembled with the widest row known (2)
    header = results.result_header(["email"], 2, [], "email")
    data = b"".join(results.assemble(header, 2, 1, 2, [[part]]))
    # Then every row has the same number of cells and nothing was dropped
    assert read(data) == [
        ["email", "column_2", "status", "error"],
        ["a@x.com", "", "ok", ""],
        ["b@x.com", "extra", "ok", ""],
    ]
