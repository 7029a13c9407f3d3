"""A workbook cell as the text Excel shows for it: integers without `.0`, dates as ISO 8601, numbers in their number
format (decimals, thousands separators, leading zeros, percent, currency text). input_formats converts a sheet row by
row with it; what changes here is how faithfully Excel's number formats are rendered, not how files are read."""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

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
