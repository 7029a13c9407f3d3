"""Which column of a customer CSV holds the values, and whether its first row names the columns.

The names a column goes by (aliases, keywords, words that are only ever names), what each kind of value looks like,
and the choice between columns: csv_input reads the file, this module reads its sample rows.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlsplit

from functions.errors import InputError

# A value column wins when at least this share of its non-empty sample values look like the type.
_MIN_SHARE = 0.5
_EMAIL = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;.]+")
_PHONE = re.compile(r"\+?[\d\s().\-]+")
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)*")
_HOSTNAME = re.compile(r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})")
_PORT = re.compile(r":\d{1,5}$")
_NOT_NAME_CHARS = re.compile(r"[\W_]+")

_ALIASES: dict[str, tuple[str, ...]] = {
    "email": (
        "email", "e-mail", "mail", "email address", "e-mail address", "emailaddress", "work email", "business email",
        "personal email", "contact email", "primary email", "email id", "courriel", "correo", "correo electronico",
        "e-mail-adresse",
    ),
    "phone": (
        "phone", "phone number", "phone no", "mobile", "mobile phone", "mobile number", "cell", "cell phone", "tel",
        "telephone", "telephone number", "work phone", "direct phone", "contact number", "msisdn", "telefon",
        "telefonnummer", "telefono", "teléfono", "téléphone", "handy",
    ),
    "company": (
        "company", "company name", "organization", "organisation", "organization name", "organisation name", "org",
        "employer", "account", "account name", "business", "business name", "firm", "firma", "unternehmen",
        "empresa", "entreprise", "société", "societe",
    ),
    "domain": (
        "domain", "domain name", "website", "web site", "url", "site", "web", "homepage", "company domain",
        "company website", "www",
    ),
    "ip": ("ip", "ip address", "ipaddress", "ipv4", "ipv6", "ip addr", "client ip", "source ip", "remote ip", "host"),
}  # fmt: skip
# Second pass for headers like "Primary E-mail (work)": a keyword inside the name, checked against the content.
_KEYWORDS: dict[str, tuple[str, ...]] = {
    "email": ("email", "courriel"),
    "phone": ("phone", "mobile", "telefon"),
    "company": ("company", "organization", "organisation", "employer"),
    "domain": ("domain", "website", "url"),
    "ip": ("ipaddress", "ipv4", "ipv6"),
}
# Words that only ever appear as column names; they let a header of plain words be told from a row of data.
_GENERIC_NAMES = (
    "name", "first name", "last name", "full name", "given name", "surname", "id", "title", "job title", "notes",
    "note", "comment", "comments", "country", "city", "state", "address", "street", "zip", "postal code", "value",
    "status", "date", "created", "created at", "updated at", "source", "tags", "industry", "department", "role",
)  # fmt: skip


def _normalize(name: str) -> str:
    # "E-Mail Address", "email_address" and "EmailAddress" all mean the same column.
    return _NOT_NAME_CHARS.sub("", name.casefold())


_NORMALIZED_ALIASES = {kind: frozenset(_normalize(a) for a in aliases) for kind, aliases in _ALIASES.items()}
_KNOWN_NAMES = frozenset().union(*_NORMALIZED_ALIASES.values(), (_normalize(n) for n in _GENERIC_NAMES))
JOB_KINDS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "phone": ("phone",),
    "company": ("company",),
    "domain": ("domain",),
    "ip": ("ip",),
    "darkweb": ("email", "domain"),
}


def looks_like_header(first: list[str], rest: list[list[str]]) -> bool:
    cells = [cell.strip() for cell in first if cell.strip()]
    if any(_value_kind(cell) for cell in cells):
        return False
    if any(_is_known_name(cell) for cell in cells):
        return True
    # A plain word above a column of emails, phones, numbers... is a name; above more plain words it may be data,
    # and treating a data row as a header would silently drop it.
    for index in range(len(first)):
        kinds = Counter(_value_kind(value) for value in _column_values(rest, index))
        if kinds and first[index].strip():
            kind, count = kinds.most_common(1)[0]
            if kind is not None and count >= _MIN_SHARE * kinds.total():
                return True
    return False


def _is_known_name(cell: str) -> bool:
    name = _normalize(cell)
    return name in _KNOWN_NAMES or (name.endswith("s") and name[:-1] in _KNOWN_NAMES)


def generated_names(rows: list[list[str]]) -> list[str]:
    width = max(len(row) for row in rows)
    return ["value"] if width == 1 else [f"column_{n}" for n in range(1, width + 1)]


def _column_values(rows: list[list[str]], index: int) -> list[str]:
    return [row[index].strip() for row in rows if index < len(row) and row[index].strip()]


# --- value patterns ---------------------------------------------------------------------------------------------------


def _is_email(value: str) -> bool:
    return _EMAIL.fullmatch(value) is not None


def _is_ip(value: str) -> bool:
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    try:
        ipaddress.ip_address(value)  # accepts IPv6 zone ids ("fe80::1%eth0")
    except ValueError:
        return False
    return True


def _is_phone(value: str) -> bool:
    if not _PHONE.fullmatch(value) or _DATE.fullmatch(value) or _is_ip(value):
        return False
    digits = sum(ch.isdigit() for ch in value)
    # Bare digit strings are phone numbers only when long enough; shorter ones are usually ids.
    minimum = 7 if not value.isdigit() else 10
    return minimum <= digits <= 15


def _is_domain(value: str) -> bool:
    if "@" in value or " " in value:
        return False
    if "://" in value:
        host = urlsplit(value).hostname or ""
    else:
        host = _PORT.sub("", re.split(r"[/?#]", value, maxsplit=1)[0])
    return _HOSTNAME.fullmatch(host.lower().rstrip(".")) is not None


def _is_number(value: str) -> bool:
    return _NUMBER.fullmatch(value) is not None


def _is_company(value: str) -> bool:
    return any(ch.isalpha() for ch in value) and _value_kind(value) is None


_MATCHERS: dict[str, Callable[[str], bool]] = {
    "email": _is_email,
    "ip": _is_ip,
    "phone": _is_phone,
    "domain": _is_domain,
    "number": _is_number,
}


def _value_kind(value: str) -> str | None:
    return next((kind for kind, matches in _MATCHERS.items() if matches(value)), None)


def _share(values: list[str], kind: str) -> float:
    matches = _is_company if kind == "company" else _MATCHERS[kind]
    return sum(1 for value in values if matches(value)) / len(values) if values else 0.0


# --- column choice ----------------------------------------------------------------------------------------------------


def choose_column(
    header: list[str], data: list[list[str]], job_type: str, kinds: tuple[str, ...], column: str | None
) -> int:
    if column is not None and column.strip():
        return _column_override(header, column)
    for kind in kinds:
        index = _column_by_name(header, data, kind)
        if index is not None:
            return index
    for kind in kinds:
        index = _column_by_content(header, data, kind)
        if index is not None:
            return index
    if len(header) == 1:
        return 0
    raise InputError(
        f"Could not tell which column holds the {job_type} values; pass `column` with one of the column names.",
        code="column_not_found",
        available=header,
    )


def _column_override(header: list[str], column: str) -> int:
    wanted = column.strip().casefold()
    for index, name in enumerate(header):
        if name.strip().casefold() == wanted:
            return index
    # A 1-based number is the only way to name a column of a file without a header.
    if re.fullmatch(r"\d+", wanted) and 1 <= int(wanted) <= len(header):
        return int(wanted) - 1
    raise InputError(f"The file has no column {column!r}.", code="column_not_found", available=header)


def _column_by_name(header: list[str], data: list[list[str]], kind: str) -> int | None:
    names = [_normalize(cell) for cell in header]
    for index, name in enumerate(names):
        if name in _NORMALIZED_ALIASES[kind]:
            return index
    for index, name in enumerate(names):
        if any(keyword in name for keyword in _KEYWORDS[kind]):
            # "email_opt_out" contains "email" too: keep the match only if the content does not contradict it.
            values = _column_values(data, index)
            if kind == "company" or not values or _share(values, kind) >= _MIN_SHARE:
                return index
    return None


def _column_by_content(header: list[str], data: list[list[str]], kind: str) -> int | None:
    best, best_share = None, 0.0
    for index in range(len(header)):
        share = _share(_column_values(data, index), kind)
        if share >= _MIN_SHARE and kind == "company":
            # Company names have no shape; the first text column is the likeliest (ids and numbers come before it).
            return index
        if share >= _MIN_SHARE and share > best_share:
            best, best_share = index, share
    return best
