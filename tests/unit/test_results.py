"""Result CSV writing: column order, padding, escaping against formula injection, BOM, assembly."""

from __future__ import annotations

import csv
import io

from functions.logic import results
from functions.models import RowResult


def read(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_formula_cells_are_guarded_and_plain_cells_untouched() -> None:
    # Given cells a spreadsheet would execute, and ordinary ones
    dangerous = ['=HYPERLINK("http://x")', "+1 555 x", "-2+3+cmd|' /C calc'!A0", "@SUM(A1)", "\tcmd", "\rcmd"]
    # When they are guarded
    guarded = [results.guard_cell(c) for c in dangerous]
    # Then each starts with an apostrophe, and unguarding gives the cell back exactly
    assert all(g.startswith("'") and g[1:] == c for g, c in zip(guarded, dangerous, strict=True))
    assert [results.unguard_cell(g) for g in guarded] == dangerous
    assert results.guard_cell("ada@example.com") == "ada@example.com"
    assert results.guard_cell("") == ""


def test_plain_numbers_and_phones_are_left_alone_except_as_a_rows_first_cell() -> None:
    # Given a German phone number, an E.164 number and a negative amount
    assert results.guard_row(["(030) 123-456", "0049 30 1234567"]) == ["(030) 123-456", "0049 30 1234567"]
    for plain in ("+49 30 1234567", "+49301234567", "-12,50"):
        # Then the guard leaves them as they are, unless the cell begins a row: opened with another delimiter, a
        # row's first field runs on into the next cells, so it is no longer a plain number there
        assert results.guard_cell(plain) == plain
        assert results.guard_row([plain, plain]) == ["'" + plain, plain]
    # And a number followed by a formula after a delimiter inside the cell is guarded there, and at its start
    assert results.guard_cell("-1;=cmd|' /C calc'!A0") == "'-1;'=cmd|' /C calc'!A0"


FOUR = (",", ";", "\t", "|")


def formula_fields(data: bytes) -> list[str]:
    """Every field that a spreadsheet would run as a formula, reading the file with each of the four delimiters."""
    found = []
    for delimiter in FOUR:
        for row in csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=delimiter):
            for field in row:
                text = field.lstrip(' "')
                if text[:1] in results.TRIGGERS and not results.PLAIN_NUMBER.fullmatch(text):
                    found.append(field)
    return found


def test_no_cell_becomes_a_formula_whatever_delimiter_the_file_is_opened_with() -> None:
    # Given the delimiter-smuggled payloads (a `;` payload in a comma file and the reverse, a tab, a pipe, a line
    # break, quotes) and random rows built from the characters that matter
    import random

    rng = random.Random(21)
    pieces = ["=", "+", "-", "@", "'", '"', " ", ";", ",", "|", "\t", "\n", "\r", "1", "cmd", "(", "49"]
    rows = [
        ["a@example.com", "x;=cmd|' /C calc'!A0;"],
        ["a@example.com", "x,=cmd|' /C calc'!A0,"],
        ["a@example.com", "x,\"=cmd|' /C calc'!A0\""],
        ["a@example.com", "x\t@SUM(1)|-2+3+cmd|' /C calc'!A0\n=1"],
        *[["".join(rng.choice(pieces) for _ in range(rng.randint(0, 9))) for _ in range(3)] for _ in range(3000)],
    ]
    for delimiter in FOUR:
        # When the rows are written as a part of the result in any delimiter
        data = results.part_rows(rows, [RowResult(status="ok")] * len(rows), [], 3, delimiter)
        # Then no field read with any of the four delimiters is a formula
        assert formula_fields(data) == []
        # And the guard is undone exactly (what formula_guard=off and JSON Lines give)
        read_back = list(csv.reader(io.StringIO(data.decode(), newline=""), delimiter=delimiter))
        assert [results.unguard_row(r)[:-3] for r in read_back] == [r + [""] * (3 - len(r)) for r in rows]


def test_header_keeps_input_columns_and_renames_colliding_added_ones() -> None:
    # Given an input that already has a `status` and a `domain` column
    header = results.result_header(["Email", "status", "domain"], 4, ["domain", "validity"], "email")
    # Then the input columns stay as they are (padded to the widest row) and added ones get a prefix
    assert header == [
        *["Email", "status", "domain", "column_4", "email_domain", "validity", "duplicate_of", "email_status", "error"]
    ]


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
    # Then each row has 2 original cells, then the type's columns, then duplicate_of, status and error
    assert read(data) == [
        ["'=cmd()", "a@b.com", "valid", "false", "", "ok", ""],
        ["x", "", "invalid", "", "", "invalid", "invalid_email"],
        ["note\r\nline 2", "c@d.com", "valid", "true", "", "ok", ""],
    ]


def test_assemble_concatenates_parts_in_order_with_a_bom_header() -> None:
    # Given two parts written for a 1-column header
    p0 = results.part_rows([["a@x.com"]], [RowResult(status="ok", data={"v": 1})], ["v"], 1)
    p1 = results.part_rows([["b@x.com"]], [RowResult(status="ok", data={"v": 2})], ["v"], 1)
    # When they are assembled
    data = b"".join(results.assemble(["email", "v", "duplicate_of", "status", "error"], 1, 1, 4, [[p0], [p1]]))
    # Then the file starts with a UTF-8 BOM and holds the rows in part order
    assert data.startswith(b"\xef\xbb\xbf")
    assert read(data) == [
        ["email", "v", "duplicate_of", "status", "error"],
        ["a@x.com", "1", "", "ok", ""],
        ["b@x.com", "2", "", "ok", ""],
    ]


def test_assemble_realigns_when_a_row_is_wider_than_the_header() -> None:
    # Given a part whose second row has an extra cell beyond the 1-column header
    part = results.part_rows(
        [["a@x.com"], ["b@x.com", "extra"]], [RowResult(status="ok"), RowResult(status="ok")], [], 1
    )
    # When assembled with the widest row known (2)
    header = results.result_header(["email"], 2, [], "email")
    data = b"".join(results.assemble(header, 2, 1, 3, [[part]]))
    # Then every row has the same number of cells and nothing was dropped
    assert read(data) == [
        ["email", "column_2", "duplicate_of", "status", "error"],
        ["a@x.com", "", "", "ok", ""],
        ["b@x.com", "extra", "", "ok", ""],
    ]
