"""Countries as customers write them: ISO 3166 alpha-2 codes, English names and the names in other languages that
phonenumbers' locale data carries (`Deutschland`, `Allemagne`, `Niemcy`), plus a few everyday aliases (`USA`, `UK`).

Used by phone jobs: a column named like a country gives each row the region its numbers are read in.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Header names that mean "the country of this row" (compared case-folded, without spaces, `-` and `_`), in English,
# German, French, Spanish, Italian, Dutch, Portuguese and Polish.
COUNTRY_HEADERS: frozenset[str] = frozenset(
    {
        "country", "countrycode", "countryiso", "countryname", "iso", "iso2", "isocode", "region", "regioncode",
        "land", "landcode", "laenderkennung", "länderkennung", "staat", "pays", "codepays", "pais", "país", "paese",
        "nazione", "nation", "nationality", "kraj",
    }
)  # fmt: skip

# Everyday names the locale data does not carry.
_ALIASES = {
    "usa": "US", "u.s.": "US", "u.s.a.": "US", "united states of america": "US", "america": "US",
    "uk": "GB", "u.k.": "GB", "great britain": "GB", "britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "northern ireland": "GB", "holland": "NL", "the netherlands": "NL", "czechia": "CZ",
    "czech republic": "CZ", "south korea": "KR", "korea": "KR", "russia": "RU", "uae": "AE", "türkiye": "TR",
    "turkey": "TR", "vietnam": "VN", "ivory coast": "CI", "österreich": "AT", "schweiz": "CH", "suisse": "CH",
}  # fmt: skip
_SPACES = re.compile(r"[\s_\-]+")


def _fold(text: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip().casefold()


@functools.cache
def _supported_regions() -> frozenset[str]:
    # phonenumbers is imported at first use: the api function (which checks a job's country option) would otherwise
    # load its metadata at every cold start, 15 ms of 213.
    import phonenumbers

    return frozenset(phonenumbers.SUPPORTED_REGIONS)


@functools.cache
def _names() -> dict[str, str]:
    """Every name of a region in phonenumbers' locale data (references such as `*aa` resolved), case-folded; a name
    that stands for two regions is left out rather than guessed."""
    from phonenumbers.geodata.locale import LOCALE_DATA

    found: dict[str, set[str]] = {}
    for region, names in LOCALE_DATA.items():
        for name in names.values():
            for _ in range(3):  # `*aa`: the same as language `aa` (chains are short; a loop gives nothing)
                if name.startswith("*"):
                    name = names.get(name[1:], "")
            if name and not name.startswith("*"):
                found.setdefault(_fold(name), set()).add(region)
    named = {name: next(iter(regions)) for name, regions in found.items() if len(regions) == 1}
    return {**named, **_ALIASES}


def region_of(value: str) -> str | None:
    """The ISO 3166 alpha-2 region a cell names (`DE`, `de`, `Germany`, `Deutschland`), or None."""
    text = _fold(value)
    if not text:
        return None
    if len(text) == 2 and text.upper() in _supported_regions():
        return text.upper()
    region = _names().get(text)
    return region if region in _supported_regions() else None


def is_country_header(name: str) -> bool:
    """Whether a column's name says it holds each row's country."""
    return _SPACES.sub("", name).strip().casefold() in COUNTRY_HEADERS


def country_column(header: list[str], named: str | None, skip: int) -> int | None:
    """The 0-based index of the rows' country column: the one `named` (a header name, or a 1-based number), else the
    first whose name says country; never `skip` (the column being enriched). None when there is none."""
    if named:
        wanted = named.strip()
        if wanted.isdigit() and 1 <= int(wanted) <= len(header):
            return int(wanted) - 1
        for index, name in enumerate(header):
            if name.strip().casefold() == wanted.casefold():
                return index
        return None
    return next((i for i, name in enumerate(header) if i != skip and is_country_header(name)), None)


def row_regions(header: list[str], rows: list[list[str]], named: str | None, skip: int) -> list[str | None] | None:
    """Each row's region from its country column (None where the cell names no region); None: no such column."""
    index = country_column(header, named, skip)
    if index is None:
        return None
    return [region_of(row[index]) if index < len(row) else None for row in rows]


def checked_country(value: str | None) -> str | None:
    """A job's `country` option as an upper-case region code; ValueError when it is not one phonenumbers knows."""
    if value is None or not value.strip():
        return None
    code = value.strip().upper()
    if len(code) != 2 or code not in _supported_regions():
        raise ValueError(f"`country` must be an ISO 3166 alpha-2 code such as DE, FR or US, not {value.strip()!r}")
    return code
