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


# Real sentences (pangrams and everyday text) and short name lists, as Excel saves them in each Windows code page.
# charset-normalizer alone read the Polish name list as cp1252 and the Turkish ones as cp1250.
SENTENCES = {
    "cp1250": [
        ("Polish", "Zażółć gęślą jaźń. Pchnąć w tę łódź jeża lub ośm skrzyń fig."),
        ("Polish names", "Imię;Nazwisko\nŁukasz;Żółć\nGrzegorz;Brzęczyszczykiewicz\nKatarzyna;Wiśniewska"),
        ("Polish list", "imie,nazwisko\nAgnieszka,Wójcik\nPiotr,Kowalczyk\nTomasz,Lewandowski\nZofia,Kamińska"),
        ("Polish one name", "name\nMałgorzata\nStanisław"),
        ("Czech", "Příliš žluťoučký kůň úpěl ďábelské ódy."),
        ("Czech names", "Jméno;Příjmení\nJiří;Dvořák\nZdeněk;Černý"),
        ("Hungarian", "Árvíztűrő tükörfúrógép. Egy hűtlen vejét fülöncsípő, dühös mexikói úr Wesselényinél mázol."),
        ("Hungarian names", "Név;Város\nErdős Pál;Győr\nKovács Éva;Pécs"),
        ("Slovak", "Kŕdeľ ďatľov učí koňa žrať kôru."),
        ("Romanian", "Nume;Oraş\nŞtefan Ţurcanu;Bucureşti\nMaria Mărgărit;Iaşi"),
    ],
    "cp1251": [
        ("Russian", "Съешь же ещё этих мягких французских булок, да выпей чаю."),
        ("Russian names", "Имя;Город\nИван Петров;Москва\nОльга;Казань"),
        ("Russian one name", "Иван"),
        ("Ukrainian", "Чуєш їх, доцю, га? Кумедна ж ти, прощайся без ґольфів!"),
        ("Bulgarian", "Жълтата дюля беше щастлива, че пухът, който цъфна, замръзна като гьон."),
    ],
    "cp1253": [
        ("Greek", "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία."),
        ("Greek names", "Όνομα;Πόλη\nΓιώργος Παπαδόπουλος;Αθήνα\nΜαρία;Θεσσαλονίκη"),
        ("Greek one name", "Νίκος"),
    ],
    "cp1254": [
        ("Turkish", "Pijamalı hasta yağız şoföre çabucak güvendi."),
        ("Turkish names", "Ad;Soyad\nŞükrü;Yıldız\nAyşe;Güneş"),
        ("Turkish list", "Müşteri;Şehir\nÇağrı Öztürk;İzmir\nGülşen Aydın;Eskişehir"),
        ("Turkish one name", "name\nDoğan Kılıç"),
    ],
    "cp1252": [
        ("German", "Victor jagt zwölf Boxkämpfer quer über den großen Sylter Deich."),
        ("French", "Portez ce vieux whisky au juge blond qui fume. Voilà l'été où ça a commencé."),
        (
            "Spanish",
            "El pingüino Wenceslao hizo kilómetros bajo exhaustiva lluvia y frío, añoraba a su querido cachorro.",
        ),
        ("Spanish names", "Señor Muñoz;Niño"),
        ("Portuguese names", "São Paulo;João"),
        ("Nordic", "Ångström;Øresund;Æbleskiver"),
        ("Icelandic", "Name\nBjörk Guðmundsdóttir"),
        ("French names", "Zoë;Chloé;Noël"),
    ],
}
CASES = [(encoding, label, text) for encoding, cases in SENTENCES.items() for label, text in cases]


@pytest.mark.parametrize(("encoding", "label", "text"), CASES, ids=[label for _, label, _ in CASES])
def test_a_legacy_file_is_read_in_the_code_page_whose_letters_make_words(encoding: str, label: str, text: str) -> None:
    # Given a short file in a Windows code page: a sentence or a few names beside their email addresses
    lines = text.split("\n")
    body = "email;text\r\n" + "".join(f"person{i}@example.com;{line}\r\n" for i, line in enumerate(lines))
    data = body.encode(encoding)
    # When it is sniffed and read
    layout = csv_input.sniff(data, "email")
    rows = list(csv_input.iter_rows([data], layout))
    # Then its code page is found and every letter comes back as written
    assert layout.encoding == encoding, f"{label} read as {layout.encoding}: {data.decode(layout.encoding)!r}"
    assert [";".join(r[1:]) for r in rows] == lines


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("cp932", "名前;都市\n山田太郎;東京\n鈴木花子;大阪"),
        ("gb18030", "姓名;城市\n王小明;北京\n李华;上海"),
        ("cp932", "カタカナ"),
    ],
)
def test_east_asian_files_are_still_left_to_charset_normalizer(encoding: str, text: str) -> None:
    body = "email;text\r\n" + "".join(f"p{i}@example.com;{line}\r\n" for i, line in enumerate(text.split("\n")))
    assert csv_input.sniff(body.encode(encoding), "email").encoding == encoding
