"""Customer CSV files as they arrive: encodings, delimiters, headers, odd rows, and which column gets enriched."""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable, Iterator

import pytest

from functions.errors import InputError
from functions.logic.csv_input import (
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_ROW_CHARS,
    SNIFF_BYTES,
    CsvLayout,
    iter_rows,
    sniff,
)


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    """The file as an S3 StreamingBody.iter_chunks() would hand it over."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def read(
    data: bytes, job_type: str = "email", column: str | None = None, chunk_size: int | None = None
) -> tuple[CsvLayout, list[list[str]]]:
    """Sniff the head like the splitter does, then stream the whole file."""
    layout = sniff(data[:SNIFF_BYTES], job_type, column)
    chunks = [data] if chunk_size is None else chunked(data, chunk_size)
    return layout, list(iter_rows(chunks, layout))


def error_of(data: bytes, job_type: str = "email", column: str | None = None) -> InputError:
    with pytest.raises(InputError) as caught:
        sniff(data[:SNIFF_BYTES], job_type, column)
    return caught.value


# --- real-world exports ----------------------------------------------------------------------------------------------


def test_excel_csv_utf8_export_with_bom_semicolons_and_crlf() -> None:
    # Given Excel's "CSV UTF-8" export from a German locale: BOM, ';', CRLF, unquoted commas in names
    data = (
        codecs.BOM_UTF8
        + (
            "Name;E-Mail;Firma;Umsatz\r\n"
            "Müller, Jürgen;juergen.mueller@example.de;Müller GmbH;1,5\r\n"
            "José Álvarez;jose@example.es;Álvarez S.L.;2,25\r\n"
            ";;;\r\n"
        ).encode()
    )

    # When it is read
    layout, rows = read(data)

    # Then the BOM is gone from the header, the e-mail column is chosen and the accents survive
    assert layout.encoding == "utf-8-sig"
    assert layout.delimiter == ";"
    assert layout.has_header
    assert layout.header == ["Name", "E-Mail", "Firma", "Umsatz"]
    assert (layout.column_index, layout.column) == (1, "E-Mail")
    assert rows == [
        ["Müller, Jürgen", "juergen.mueller@example.de", "Müller GmbH", "1,5"],
        ["José Álvarez", "jose@example.es", "Álvarez S.L.", "2,25"],
    ]


def test_google_sheets_export_quotes_only_where_needed() -> None:
    # Given a Google Sheets download: UTF-8 without BOM, ',' and quotes around cells holding commas or quotes
    data = (
        "Company Name,Website,City\r\n"
        '"Acme, Inc.",https://www.acme.com/about,"Springfield"\r\n'
        '"The ""Best"" Bakery",bestbakery.co.uk,London\r\n'
        "Zürich Versicherung,zurich.ch,Zürich"
    ).encode()

    # When it is read as a domain job
    layout, rows = read(data, "domain")

    # Then quotes are undone and the website column is chosen
    assert (layout.encoding, layout.delimiter, layout.column) == ("utf-8", ",", "Website")
    assert rows == [
        ["Acme, Inc.", "https://www.acme.com/about", "Springfield"],
        ['The "Best" Bakery', "bestbakery.co.uk", "London"],
        ["Zürich Versicherung", "zurich.ch", "Zürich"],
    ]


def test_excel_unicode_text_is_utf16_le_with_bom_and_tabs() -> None:
    # Given Excel's "Unicode text" export: UTF-16 LE with BOM, tab-delimited
    text = "Full Name\tMobile\tCountry\r\nÅsa Ødegård\t+47 912 34 567\tNorway\r\n李雷\t+86 138 0013 8000\tChina\r\n"
    data = codecs.BOM_UTF16_LE + text.encode("utf-16-le")

    # When it is read as a phone job
    layout, rows = read(data, "phone")

    # Then it decodes as UTF-16 and the mobile column is chosen
    assert (layout.encoding, layout.delimiter, layout.column_index) == ("utf-16", "\t", 1)
    assert layout.header == ["Full Name", "Mobile", "Country"]
    assert rows == [["Åsa Ødegård", "+47 912 34 567", "Norway"], ["李雷", "+86 138 0013 8000", "China"]]


def test_utf16_big_endian_with_bom() -> None:
    # Given a UTF-16 BE file with BOM
    data = codecs.BOM_UTF16_BE + "email\nrené@example.fr\n".encode("utf-16-be")

    # When it is read
    layout, rows = read(data)

    # Then it decodes
    assert layout.encoding == "utf-16"
    assert rows == [["rené@example.fr"]]


def test_cp1252_file_from_legacy_excel() -> None:
    # Given a Windows "CSV (comma delimited)" export in cp1252 with é, ü and the euro sign
    data = "Name,Email,Budget\r\nRené Müller,rene@example.fr,€500\r\nZoë,zoe@example.com,€20\r\n".encode("cp1252")

    # When it is read
    layout, rows = read(data)

    # Then the characters come out right
    assert layout.encoding == "cp1252"
    assert rows == [["René Müller", "rene@example.fr", "€500"], ["Zoë", "zoe@example.com", "€20"]]


def test_head_cut_in_the_middle_of_a_utf8_character_is_still_utf8() -> None:
    # Given a UTF-8 file whose 64 KiB head ends after the first byte of "é"
    prefix = b"name,email\n"
    filler_row = b"x,x@example.com\n"
    data = prefix + filler_row * ((SNIFF_BYTES - len(prefix)) // len(filler_row))
    padding = "y" * (SNIFF_BYTES - 1 - len(data))
    data += f"{padding}é,e@example.com\n".encode()
    assert data[SNIFF_BYTES - 1 : SNIFF_BYTES] == "é".encode()[:1]

    # When it is read
    layout, rows = read(data)

    # Then it is UTF-8, not cp1252, and the é row comes out intact
    assert layout.encoding == "utf-8"
    assert rows[-1] == [f"{padding}é", "e@example.com"]


def test_cp1252_bytes_after_an_ascii_head_still_decode() -> None:
    # Given a cp1252 file whose first 64 KiB happen to be plain ASCII
    rows_before = b"name,email\n" + b"Bob,bob@example.com\n" * (SNIFF_BYTES // 20 + 10)
    data = rows_before + "Hélène,helene@example.fr\n".encode("cp1252")

    # When it is read
    layout, rows = read(data, chunk_size=4096)

    # Then the later accented name is not mangled
    assert layout.encoding == "utf-8"
    assert rows[-1] == ["Hélène", "helene@example.fr"]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00[Content_Types].xml", id="xlsx"),
        pytest.param("email\na@b.com\n".encode("utf-16-le"), id="utf16-without-bom"),
        pytest.param(bytes(range(1, 32)) * 20 + b"a,b\n", id="control-bytes"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", id="png"),
    ],
)
def test_binary_files_are_rejected(data: bytes) -> None:
    # Given a file that is not CSV text
    # When it is sniffed
    error = error_of(data)

    # Then the caller is told it is not CSV
    assert error.code == "not_csv"


def test_excel_workbook_gets_an_export_hint() -> None:
    # Given an .xlsx uploaded by mistake
    # When it is sniffed
    error = error_of(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00")

    # Then the message says what it looks like and what to do
    assert "Excel" in error.message
    assert "export it as CSV" in error.message


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(codecs.BOM_UTF8, id="bom-only"),
        pytest.param(codecs.BOM_UTF16_LE, id="utf16-bom-only"),
        pytest.param(b" \r\n\t\n\n", id="whitespace"),
        pytest.param(b",,,\r\n , ,\r\n", id="empty-cells-only"),
    ],
)
def test_empty_files_are_rejected(data: bytes) -> None:
    # Given a file with nothing to enrich
    # When it is sniffed
    error = error_of(data)

    # Then the caller is told it is empty
    assert error.code == "empty_file"


def test_header_without_rows_is_rejected() -> None:
    # Given a file with only a header row
    # When it is sniffed
    error = error_of(b"Email,Name\r\n\r\n")

    # Then the caller is told there are no rows
    assert error.code == "no_rows"


def test_header_with_rows_beyond_the_head_is_accepted() -> None:
    # Given a header and a first row so long that the 64 KiB head holds no complete data row
    long_cell = ("é" * 30_000).encode()  # two of them: 120 KB, within the cell and row limits (characters)
    data = b"email,notes,more\r\na@example.com," + long_cell + b"," + long_cell + b"\r\nb@example.com,short\r\n"
    assert len(data) > SNIFF_BYTES

    # When it is read
    layout, rows = read(data)

    # Then the file is not refused, and both rows come through
    assert layout.has_header and layout.column == "email"
    assert [row[0] for row in rows] == ["a@example.com", "b@example.com"]


# --- delimiters ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter_is_detected(delimiter: str) -> None:
    # Given a three-column file; the notes column quotes cells holding the other delimiters
    others = "".join(d for d in ",;\t|" if d != delimiter)
    lines = [["email", "name", "notes"]] + [
        [f"u{n}@example.com", f"User {n}", f'"see: {others} {n}"'] for n in range(5)
    ]
    data = "\n".join(delimiter.join(line) for line in lines).encode()

    # When it is read
    layout, rows = read(data)

    # Then the delimiter is found and every row has three cells
    assert layout.delimiter == delimiter
    assert rows[0] == ["u0@example.com", "User 0", f"see: {others} 0"]
    assert all(len(row) == 3 for row in rows)


def test_delimiters_inside_quotes_do_not_count() -> None:
    # Given a comma file whose quoted notes hold more semicolons than there are commas
    data = b'email,notes\na@example.com,"a;b;c;d;e"\nb@example.com,"f;g;h;i;j"\nc@example.com,"k;l;m;n;o"\n'

    # When it is read
    layout, rows = read(data)

    # Then the comma wins
    assert layout.delimiter == ","
    assert rows[1] == ["b@example.com", "f;g;h;i;j"]


def test_single_column_file_uses_comma() -> None:
    # Given a plain list of domains
    # When it is sniffed
    layout = sniff(b"example.com\nexample.org\nacme.io\n", "domain")

    # Then there is no delimiter to find, and "," is used
    assert layout.delimiter == ","
    assert (layout.header, layout.column_index) == (["value"], 0)


def test_excel_sep_directive_names_the_delimiter_and_is_not_a_row() -> None:
    # Given a file starting with Excel's "sep=" line
    data = b"sep=|\r\nemail|name\r\na@example.com|Ann\r\n"

    # When it is read
    layout, rows = read(data)

    # Then the directive sets the delimiter and is neither header nor data
    assert layout.delimiter == "|"
    assert layout.header == ["email", "name"]
    assert rows == [["a@example.com", "Ann"]]


# --- headers ---------------------------------------------------------------------------------------------------------


def test_headerless_email_list_keeps_its_first_row() -> None:
    # Given a bare list of emails, as people paste them
    data = b"ann@example.com\nbob@example.org\r\ncarol@example.net"

    # When it is read
    layout, rows = read(data)

    # Then no row is taken for a header
    assert not layout.has_header
    assert layout.header == ["value"]
    assert (layout.column_index, layout.column) == (0, "value")
    assert rows == [["ann@example.com"], ["bob@example.org"], ["carol@example.net"]]


def test_headerless_multi_column_file_gets_generated_names() -> None:
    # Given rows without a header: name, email, phone
    data = b"Ann,ann@example.com,+1 555 010 2000\nBob,bob@example.com,+1 555 010 3000\n"

    # When it is read as a phone job
    layout, rows = read(data, "phone")

    # Then the columns get generated names and the phone column is found by its content
    assert not layout.has_header
    assert layout.header == ["column_1", "column_2", "column_3"]
    assert (layout.column_index, layout.column) == (2, "column_3")
    assert len(rows) == 2


def test_unknown_header_words_above_typed_values_are_a_header() -> None:
    # Given a header in words no alias list knows, above emails
    data = b"Kontaktperson;Adresse electronique\nAnn;ann@example.com\nBob;bob@example.com\n"

    # When it is read
    layout, rows = read(data)

    # Then the first row is a header and the email column is found by content
    assert layout.has_header
    assert layout.column == "Adresse electronique"
    assert rows == [["Ann", "ann@example.com"], ["Bob", "bob@example.com"]]


def test_headerless_company_list_keeps_its_first_company() -> None:
    # Given a bare list of company names: plain words, like a header would be
    data = b"Acme Corporation\nGlobex\nInitech LLC\n"

    # When it is read
    layout, rows = read(data, "company")

    # Then the first company is data, not a header
    assert not layout.has_header
    assert rows == [["Acme Corporation"], ["Globex"], ["Initech LLC"]]


# --- row shapes ------------------------------------------------------------------------------------------------------


def test_quoted_newline_inside_a_notes_column() -> None:
    # Given a CRM export whose notes hold line breaks
    data = (
        b"Email,Notes,Owner\r\n"
        b'ann@example.com,"Met at conference.\nFollow up in Q3.\r\nVIP",Sam\r\n'
        b"bob@example.com,,Kim\r\n"
    )

    # When it is read
    _, rows = read(data)

    # Then the note stays one cell and the row count is right
    assert rows == [
        ["ann@example.com", "Met at conference.\nFollow up in Q3.\r\nVIP", "Sam"],
        ["bob@example.com", "", "Kim"],
    ]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_line_endings(newline: str) -> None:
    # Given the same file with LF, CRLF or old-Mac CR line endings
    data = newline.join(["email,name", "a@example.com,Ann", "b@example.com,Bob", ""]).encode()

    # When it is read
    layout, rows = read(data)

    # Then the rows are the same
    assert layout.has_header
    assert rows == [["a@example.com", "Ann"], ["b@example.com", "Bob"]]


def test_ragged_rows_are_yielded_as_they_are() -> None:
    # Given rows with fewer and more cells than the header
    data = b"email,name,company\na@example.com\nb@example.com,Bob,Acme,extra,cells\nc@example.com,Cy,Initech\n"

    # When it is read
    layout, rows = read(data)

    # Then nothing is padded or cut
    assert layout.column_index == 0
    assert rows == [
        ["a@example.com"],
        ["b@example.com", "Bob", "Acme", "extra", "cells"],
        ["c@example.com", "Cy", "Initech"],
    ]


def test_blank_lines_and_empty_rows_are_skipped() -> None:
    # Given blank lines before the header, between rows, rows of empty cells and a trailing blank line
    data = b"\r\n\r\nemail;name\r\n\r\na@example.com;Ann\r\n;;\r\n  ;  \r\nb@example.com;Bob\r\n\r\n"

    # When it is read
    layout, rows = read(data)

    # Then only the two people come out, and the header is still recognised
    assert layout.header == ["email", "name"]
    assert rows == [["a@example.com", "Ann"], ["b@example.com", "Bob"]]


def test_large_file_streams_in_small_chunks() -> None:
    # Given a 200,000-row file read in 1 KiB chunks
    data = b"email,first_name,last_name\r\n" + b"".join(
        b"user%d@example.com,First%d,Last%d\r\n" % (n, n, n) for n in range(200_000)
    )

    # When it is streamed
    layout, rows = read(data, chunk_size=1024)

    # Then every row comes through, in order
    assert layout.column == "email"
    assert len(rows) == 200_000
    assert rows[0] == ["user0@example.com", "First0", "Last0"]
    assert rows[-1] == ["user199999@example.com", "First199999", "Last199999"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_chunk_boundaries_anywhere_give_the_same_rows(encoding: str) -> None:
    # Given a file with multi-byte characters, CRLFs and a quoted CRLF
    data = 'email,name\r\nzoë@example.com,"Zoë\r\nÅström"\r\n日本@example.jp,日本\r\n'.encode(encoding)
    layout = sniff(data, "email")
    expected = [["zoë@example.com", "Zoë\r\nÅström"], ["日本@example.jp", "日本"]]

    for split in range(1, len(data)):
        # When the file arrives in two chunks split at any byte, also inside a character or a CRLF
        rows = list(iter_rows([data[:split], data[split:]], layout))

        # Then the rows are the same as read in one piece
        assert rows == expected, f"split at byte {split}"

    # And one byte at a time as well
    assert list(iter_rows(chunked(data, 1), layout)) == expected


def test_unterminated_quote_is_reported_not_buffered_forever() -> None:
    # Given a file whose quote never closes, followed by a lot of data
    data = b'email,notes\na@example.com,"oops\n' + b"b@example.com,fine\n" * 20_000
    layout = sniff(data[:SNIFF_BYTES], "email")

    # When it is streamed
    with pytest.raises(InputError) as caught:
        list(iter_rows(chunked(data, 8192), layout))

    # Then the caller gets a clear error
    assert caught.value.code == "malformed_csv"


# --- column choice ---------------------------------------------------------------------------------------------------


def test_column_override_matches_header_case_insensitively() -> None:
    # Given two email columns and the caller naming the second one loosely
    data = b"Work Email,Personal Email\nann@acme.com,ann@gmail.com\n"

    # When it is sniffed with column="  personal email "
    layout = sniff(data, "email", "  personal email ")

    # Then that column is used
    assert (layout.column_index, layout.column) == (1, "Personal Email")


def test_column_override_by_number_for_headerless_file() -> None:
    # Given a header-less file and the caller asking for column 2
    data = b"Ann,ann@example.com\nBob,bob@example.com\n"

    # When it is sniffed with column="2"
    layout = sniff(data, "email", "2")

    # Then the second column is used
    assert (layout.column_index, layout.column) == (1, "column_2")


def test_unknown_column_override_lists_the_available_columns() -> None:
    # Given a file without the column the caller asked for
    # When it is sniffed
    error = error_of(b"Name,Email\nAnn,ann@example.com\n", "email", "E-mail address")

    # Then the error says so and lists what there is
    assert error.code == "column_not_found"
    assert error.body()["available"] == ["Name", "Email"]


@pytest.mark.parametrize(
    ("job_type", "header", "expected"),
    [
        ("email", "Name,E-mail Address,Phone", "E-mail Address"),
        ("email", "id,first_name,work_email", "work_email"),
        ("phone", "Name,Email,Mobile", "Mobile"),
        ("phone", "Name,Telephone Number", "Telephone Number"),
        ("company", "Email,Organisation,Country", "Organisation"),
        ("company", "Email,Account Name", "Account Name"),
        ("domain", "Company,Homepage,Email", "Homepage"),
        ("ip", "timestamp,Client IP,user_agent", "Client IP"),
        ("ip", "time,IPv6", "IPv6"),
        ("darkweb", "Website,Email Address", "Email Address"),
        ("darkweb", "Company,Domain", "Domain"),
    ],
)
def test_column_found_by_header_name(job_type: str, header: str, expected: str) -> None:
    # Given a header naming the column in one of the usual ways, over neutral values
    data = f"{header}\n" + ",".join("x" for _ in header.split(",")) + "\n"

    # When it is sniffed
    layout = sniff(data.encode(), job_type)

    # Then that column is chosen
    assert layout.column == expected


def test_header_keyword_is_checked_against_the_content() -> None:
    # Given an opt-out flag column whose name contains "email" before the real one
    data = b"email_opt_out,Primary Email (work)\nyes,ann@example.com\nno,bob@example.com\n"

    # When it is sniffed
    layout = sniff(data, "email")

    # Then the column that holds emails is chosen
    assert layout.column == "Primary Email (work)"


@pytest.mark.parametrize(
    ("job_type", "data", "expected_index"),
    [
        ("email", b"1,Ann,ann@example.com\n2,Bob,bob@example.co.uk\n", 2),
        ("phone", b"1001,Ann,(555) 010-2000\n1002,Bob,+44 20 7946 0958\n", 2),
        ("domain", b"Acme,https://acme.com/contact\nGlobex,www.globex.io\n", 1),
        ("ip", b"web-1,fe80::1%eth0\nweb-2,[2001:db8::1]\nweb-3,192.0.2.10\n", 1),
        ("company", b"1001,2024-01-15,Acme Corp,US\n1002,2024-01-16,Globex,DE\n", 2),
        ("darkweb", b"Acme,acme.com\nGlobex,globex.io\n", 1),
    ],
)
def test_column_found_by_content_in_headerless_files(job_type: str, data: bytes, expected_index: int) -> None:
    # Given a header-less file with one column of the job's type
    # When it is sniffed
    layout = sniff(data, job_type)

    # Then the column whose values look like the type is chosen
    assert not layout.has_header
    assert layout.column_index == expected_index


def test_single_column_is_used_even_when_values_look_wrong() -> None:
    # Given a single column of values that are not emails (they will fail per row, not the whole job)
    layout = sniff(b"n/a\nunknown\n", "email")

    # Then the only column is used
    assert layout.column_index == 0


def test_no_recognisable_column_asks_for_the_column_parameter() -> None:
    # Given several columns, none of which looks like a phone number
    # When it is sniffed for a phone job
    error = error_of(b"Name,City\nAnn,Paris\nBob,Berlin\n", "phone")

    # Then the caller is told to pass `column`, with the choices
    assert error.code == "column_not_found"
    assert "column" in error.message
    assert error.body()["available"] == ["Name", "City"]


def test_unknown_job_type_is_rejected() -> None:
    # Given a job type the API does not offer
    # When a file is sniffed for it
    error = error_of(b"a@example.com\n", "fax")

    # Then the caller is told
    assert error.code == "invalid_type"


# --- limits: a file that would overflow a message or the job item is refused up front ------------------------------


def test_wide_headerless_file_is_refused_with_the_column_limit() -> None:
    # Given a header-less file of an address and 60,000 empty cells, twice (the 120 KB file)
    row = b"a@example.com" + b"," * 60_000 + b"\n"

    # When it is sniffed
    error = error_of(row * 2)

    # Then it is refused with a code and the limit, not accepted to overflow the job's layout later
    assert error.code == "too_many_columns"
    assert error.details["max_columns"] == MAX_COLUMNS


def test_header_longer_than_the_head_with_too_many_columns_names_the_real_reason() -> None:
    # Given a header of 30,000 names (longer than the 64 KiB head) and one data row
    data = ",".join(f"c{i}" for i in range(30_000)).encode() + b"\na@example.com\n"

    # When it is sniffed
    error = error_of(data)

    # Then the reason is the column count, not "not CSV"
    assert error.code == "too_many_columns"


def test_row_wider_than_the_limit_further_down_is_refused_while_streaming() -> None:
    # Given a normal head and, far below it, one row with more cells than the limit
    data = b"email,name\n" + b"a@example.com,Ada\n" * 5_000 + b"b@example.com" + b",x" * MAX_COLUMNS + b"\n"
    layout = sniff(data[:SNIFF_BYTES], "email")

    # When it is streamed
    with pytest.raises(InputError) as caught:
        list(iter_rows(chunked(data, 8192), layout))

    # Then the caller is told which limit and where
    assert caught.value.code == "too_many_columns"
    assert "5002" in caught.value.message


def test_widest_allowed_file_is_read_whole() -> None:
    # Given a file with exactly the column limit
    header = ",".join(["email"] + [f"c{i}" for i in range(1, MAX_COLUMNS)]).encode()
    row = ",".join(["a@example.com"] + ["x"] * (MAX_COLUMNS - 1)).encode()

    # When it is read
    layout, rows = read(header + b"\n" + row + b"\n" + row + b"\n")

    # Then it is accepted with every column
    assert layout.column == "email" and len(layout.header) == MAX_COLUMNS
    assert len(rows) == 2 and len(rows[0]) == MAX_COLUMNS


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(lambda n: ("a@example.com" + "," * (n - 1) + "\n") * 2, id="headerless-empty-cells"),
        pytest.param(lambda n: (",".join("x" for _ in range(n)) + "\n") * 2, id="plain-words"),
        pytest.param(lambda n: ",".join(f"c{i}" for i in range(n)) + "\n" + "a@example.com\n", id="header"),
    ],
)
def test_column_detection_time_grows_with_the_head_not_with_its_square(shape: Callable[[int], str]) -> None:
    # Given the widest allowed file and one with thirty times its columns (the took 41 s end to end)
    for columns in (MAX_COLUMNS, 30_000):
        data = shape(columns).encode()
        started = time.perf_counter()

        # When it is sniffed (and, when accepted, streamed)
        try:
            layout = sniff(data[:SNIFF_BYTES], "email")
            list(iter_rows([data], layout))
        except InputError as exc:
            assert exc.code in ("too_many_columns", "column_not_found"), exc.code

        # Then the answer comes at once
        assert time.perf_counter() - started < 2.0, columns


# --- unclosed quotes: never a silent loss ----------------------------------------------------------------------------


def test_unclosed_quote_on_row_one_of_a_big_file_is_malformed_not_one_huge_cell() -> None:
    # Given the file: 5,001 rows, the first one with a quote that never closes
    data = b'email,note\na@example.com,"oops\n' + b"".join(b"user%d@example.com,fine\n" % i for i in range(5_000))
    layout = sniff(data[:SNIFF_BYTES], "email")

    # When it is streamed
    with pytest.raises(InputError) as caught:
        list(iter_rows(chunked(data, 8192), layout))

    # Then it is refused as malformed with a hint, instead of 5,000 addresses vanishing into one cell
    assert caught.value.code == "malformed_csv"
    assert "quote" in caught.value.message


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'email,note\na@example.com,"oops\nb@example.com,x\nc@example.com,y\n', id="open-at-eof"),
        pytest.param(b'email,note\na@example.com,x\nb@example.com,"oops', id="open-at-eof-no-newline"),
        pytest.param(b'email\n"a@example.com\nb@example.com\n', id="open-first-cell"),
        pytest.param(b'email;note\na@example.com;"x""\n', id="escaped-quote-leaves-it-open"),
    ],
)
def test_quote_still_open_at_the_end_of_a_small_file_is_malformed(data: bytes) -> None:
    # Given a small file whose last quote never closes
    layout = sniff(data[:SNIFF_BYTES], "email")

    # When it is streamed
    with pytest.raises(InputError) as caught:
        list(iter_rows([data], layout))

    # Then it is refused, not read as a last cell holding the rest of the file
    assert caught.value.code == "malformed_csv"


@pytest.mark.parametrize(
    ("data", "last"),
    [
        pytest.param(b'email,note\na@example.com,"multi\nline"\n', ["a@example.com", "multi\nline"], id="closed"),
        pytest.param(b'email,note\na@example.com,"x"', ["a@example.com", "x"], id="closed-no-newline"),
        pytest.param(b'email,note\na@example.com,""""', ["a@example.com", '"'], id="only-an-escaped-quote"),
        pytest.param(b"email,note\na@example.com,", ["a@example.com", ""], id="empty-last-cell"),
        pytest.param(b'email,note\na@example.com,say "hi', ["a@example.com", 'say "hi'], id="quote-mid-cell"),
        pytest.param(b'email,note\na@example.com,"x"y"', ["a@example.com", 'xy"'], id="lenient-after-close"),
    ],
)
def test_files_ending_with_closed_or_literal_quotes_are_read(data: bytes, last: list[str]) -> None:
    # Given a file whose quotes are all closed (or are literal characters inside an unquoted cell)
    # When it is read
    _, rows = read(data)

    # Then the last row is what the file says
    assert rows[-1] == last


def test_cell_longer_than_a_spreadsheet_cell_is_malformed() -> None:
    # Given a quoted cell of 40,000 characters (a spreadsheet cell holds at most 32,767)
    data = b'email,note\na@example.com,"' + b"x" * 40_000 + b'"\n'
    layout = sniff(data[:SNIFF_BYTES], "email")

    # When it is streamed
    with pytest.raises(InputError) as caught:
        list(iter_rows([data], layout))

    # Then it is refused as malformed, the limit named
    assert caught.value.code == "malformed_csv"
    assert caught.value.details["max_cell_chars"] == MAX_CELL_CHARS


def test_row_longer_than_the_row_limit_is_refused() -> None:
    # Given a row of three cells of 30,000 characters each (each cell fits, the row does not)
    data = b"email,a,b,c\na@example.com," + b",".join([b"x" * 30_000] * 3) + b"\n"
    layout = sniff(data[:SNIFF_BYTES], "email")

    # When it is streamed
    with pytest.raises(InputError) as caught:
        list(iter_rows([data], layout))

    # Then the row limit is named
    assert caught.value.code == "row_too_large"
    assert caught.value.details["max_row_chars"] == MAX_ROW_CHARS
