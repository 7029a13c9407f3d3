"""Legacy code pages: a file that is not UTF-8 is read in the code page its letters make sense in."""

from __future__ import annotations

import time

import pytest

from functions.logic import csv_input

PEOPLE = {
    "cp1250": [
        "Łukasz Żółkiewski;Łódź",
        "Jiří Dvořák;Plzeň",
        "Žaneta Šťastná;České Budějovice",
        "Paweł Świątek;Kraków",
    ],
    "cp1251": ["Иван Петров;Москва", "Ёлка Щукина;Санкт-Петербург", "Юрий Жуков;Новосибирск", "Анна Смирнова;Казань"],
    "cp1252": ["Jürgen Müller;München", "François Lefèvre;Orléans", "Hélène Bœuf;Besançon", "Grete Weiß;Köln"],
}


def export(encoding: str, rows: int = 4) -> bytes:
    lines = ["Name;Stadt;E-Mail"] + [f"{PEOPLE[encoding][i % 4]};person{i}@example.com" for i in range(rows)]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


@pytest.mark.parametrize("encoding", list(PEOPLE))
@pytest.mark.parametrize("rows", [4, 2000])
def test_each_code_page_is_recognized_and_its_letters_come_back(encoding: str, rows: int) -> None:
    # Given a legacy Excel export, short or long
    data = export(encoding, rows)
    # When it is sniffed and read
    layout = csv_input.sniff(data[: csv_input.SNIFF_BYTES], "email")
    read = list(csv_input.iter_rows([data], layout))
    # Then its code page is the one it was written in, and every name reads as written
    assert layout.encoding == encoding
    assert [";".join(r[:2]) for r in read[:4]] == PEOPLE[encoding]
    assert len(read) == rows


def test_a_short_western_file_that_reads_the_same_in_several_code_pages_is_cp1252() -> None:
    # "€" and "é" mean the same in cp1252 as in cp1250 and others: the common one wins the tie
    data = "Name,Email,Budget\r\nRené Müller,rene@example.fr,€500\r\n".encode("cp1252")
    assert csv_input.sniff(data, "email").encoding == "cp1252"


def test_detection_on_a_full_head_is_quick() -> None:
    # The splitter and the API sniff 64 KiB; detection must not be what a request waits for
    data = export("cp1251", 3000)[: csv_input.SNIFF_BYTES]
    started = time.monotonic()
    assert csv_input.sniff(data, "email").encoding == "cp1251"
    assert time.monotonic() - started < 2.0
