"""Company: a name or a domain, with the legal form separated (cleanco) and a country hint (offline).

A value without spaces that is a host with a registrable domain (`acme.de`, `https://www.acme.co.uk/about`) is a
domain: `domain` is its registrable domain, `name` is guessed from it and the hint comes from its country-code TLD
(generic ones like .io, .ai, .co give none). Anything else is a name: cleanco removes the trailing legal form
(`Siemens AG` -> `Siemens` + `AG`), whose type and countries come from cleanco's term tables. The hint is the one
country cleanco lists for that form, or, for forms used in several countries, the country it is most used in
(GmbH -> DE, Ltd -> GB, Inc -> US), only when cleanco lists that country too. A row is `invalid` when the value has
no letter or digit, is a spreadsheet placeholder (`N/A`, `#REF!`: `empty_value`), or is nothing but a legal form
(`GmbH`).

With the website source on (`EnrichSettings.website_enabled`) a domain input's home page (`https://<domain>/`) is
fetched: final URL, status, title, description and the first LinkedIn/X/Facebook/Instagram/YouTube/GitHub profile
links. Every hop is resolved and checked (no private, loopback, link-local or metadata addresses, also not through
redirects) and connected to exactly that address; time and size are capped. A fetch that fails makes the row
`error` (`website_unreachable`, `website_timeout`, `website_blocked`, `website_too_many_redirects`,
`website_error`), not charged.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from cleanco import basename
from cleanco.clean import normalized as cleanco_normalized
from cleanco.termdata import terms_by_country, terms_by_type
from pydantic import BaseModel

from functions.enrich._common import EMPTY_VALUE, columns_of, enrich_each, invalid, ok, strip_key
from functions.enrich._hosts import (
    HostError,
    cctld_country,
    name_from_label,
    parse_target,
    split,
    to_host,
    unicode_of,
)
from functions.enrich.online import OFFLINE, Sources, augment
from functions.models import RowResult

INVALID = "invalid_company"
MAX_NAME_LENGTH = 300

# cleanco names countries in English prose; its term tables are the source, this only maps its names to ISO codes.
_COUNTRY_CODES = {
    "Albania": "AL", "Argentina": "AR", "Australia": "AU", "Austria": "AT", "Belarus": "BY", "Belgium": "BE",
    "Bosnia / Herzegovina": "BA", "Brazil": "BR", "Bulgaria": "BG", "Cambodia": "KH", "Canada": "CA", "Chile": "CL",
    "Columbia": "CO", "Croatia": "HR", "Czech Republic": "CZ", "Denmark": "DK", "Dominican Republic": "DO",
    "Ecuador": "EC", "Egypt": "EG", "Estonia": "EE", "Finland": "FI", "France": "FR", "Germany": "DE", "Greece": "GR",
    "Guatemala": "GT", "Haiti": "HT", "Hong Kong": "HK", "Hungary": "HU", "Iceland": "IS", "India": "IN",
    "Indonesia": "ID", "Ireland": "IE", "Israel": "IL", "Italy": "IT", "Japan": "JP", "Latvia": "LV", "Lebanon": "LB",
    "Lithuania": "LT", "Luxemborg": "LU", "Macedonia": "MK", "Malaysia": "MY", "Mexico": "MX", "Mongolia": "MN",
    "Netherlands": "NL", "New Zealand": "NZ", "Nigeria": "NG", "Norway": "NO", "Oman": "OM", "Pakistan": "PK",
    "Peru": "PE", "Philippines": "PH", "Poland": "PL", "Portugal": "PT", "Romania": "RO", "Russia": "RU",
    "Serbia": "RS", "Singapore": "SG", "Slovakia": "SK", "Slovenia": "SI", "Spain": "ES", "Sweden": "SE",
    "Switzerland": "CH", "Turkey": "TR", "Ukraine": "UA", "United Kingdom": "GB", "United States of America": "US",
    "Uzbekistan": "UZ",
}  # fmt: skip

# Where a form shared by several countries is by far most common (keys are compact forms, see _compact); None where
# no country dominates or cleanco's one country is misleading (SE is the EU-wide Societas Europaea, not Argentina).
_PRIMARY_COUNTRY: dict[str, str | None] = {
    "gmbh": "DE", "ag": "DE", "kg": "DE", "kgaa": "DE", "gmbh&cokg": "DE", "ev": "DE",
    "ltd": "GB", "limited": "GB", "plc": "GB", "llp": "GB",
    "inc": "US", "corp": "US", "corporation": "US", "incorporated": "US", "llc": "US", "pllc": "US", "co": "US",
    "sarl": "FR", "sas": "FR", "gie": "FR",
    "ab": "SE", "spa": "IT", "ltda": "BR", "pvtltd": "IN", "pteltd": "SG",
    "se": None, "sa": None, "srl": None, "as": None,
}  # fmt: skip

_SPACES = re.compile(r"\s+")
# What spreadsheets and CRMs put in an empty company field; charging for them would bill for blanks.
_PLACEHOLDERS = frozenset({"n/a", "na", "none", "null", "nil", "unknown", "tbd", "#n/a", "#ref!", "#value!", "#name?"})
_COMPACT_DROP = re.compile(r"[\s.,\-]+")


class CompanyResult(BaseModel):
    """The columns of a company row."""

    input_kind: str | None
    name: str | None
    legal_name: str | None
    legal_form: str | None
    legal_form_type: str | None
    normalized_name: str | None
    domain: str | None
    country_hint: str | None
    country_hint_source: str | None
    legal_form_countries: str | None
    reason: str | None
    # The home page of a domain input (functions/providers/website.py); empty unless the website source is on.
    website_url: str | None = None
    website_status: int | None = None
    website_title: str | None = None
    website_description: str | None = None
    linkedin: str | None = None
    twitter: str | None = None
    facebook: str | None = None
    instagram: str | None = None
    youtube: str | None = None
    github: str | None = None
    from_cache: bool | None = None


COLUMNS: tuple[str, ...] = columns_of(CompanyResult)


def _compact(term: str) -> str:
    # Accents, case, dots, commas, hyphens and spaces do not tell legal forms apart (S.à r.l. = sarl, sp. z o.o.).
    decomposed = unicodedata.normalize("NFKD", term.casefold())
    return _COMPACT_DROP.sub("", "".join(c for c in decomposed if not unicodedata.combining(c)))


@functools.cache
def _legal_forms() -> dict[str, tuple[list[str], list[str]]]:
    """Compact legal form -> (business types, ISO countries), from cleanco's term tables."""
    table: dict[str, tuple[list[str], list[str]]] = {}
    for kind, terms in terms_by_type.items():
        for term in terms:
            types = table.setdefault(_compact(term), ([], []))[0]
            if kind not in types:
                types.append(kind)
    for country, terms in terms_by_country.items():
        code = _COUNTRY_CODES.get(country)
        for term in terms:
            countries = table.setdefault(_compact(term), ([], []))[1]
            if code and code not in countries:
                countries.append(code)
    return table


def _classify(legal_form: str) -> tuple[str | None, list[str], str | None]:
    """The business type, candidate countries and hinted country of a legal form."""
    key = _compact(legal_form)
    types, countries = _legal_forms().get(key, ([], []))
    if not types and not countries:
        # A combination cleanco does not list as one term ("Holding AG"): go by its words.
        for word in legal_form.split():
            more_types, more_countries = _legal_forms().get(_compact(word), ([], []))
            types = types or more_types
            countries = countries + [c for c in more_countries if c not in countries]
    if key in _PRIMARY_COUNTRY:
        primary = _PRIMARY_COUNTRY[key]
        primary = primary if primary in countries else None
    else:
        primary = countries[0] if len(countries) == 1 else None
    return (types[0] if types else None), countries, primary


def _as_domain(value: str) -> RowResult | None:
    if " " in value or "." not in value:
        return None
    try:
        parts = split(to_host(parse_target(value).host).ascii)
    except HostError:
        return None
    country = cctld_country(parts.icann_suffix)
    name = name_from_label(parts.label)
    return ok(
        CompanyResult(
            input_kind="domain",
            name=name,
            legal_name=None,
            legal_form=None,
            legal_form_type=None,
            normalized_name=str(cleanco_normalized(name)),
            domain=unicode_of(parts.registrable),
            country_hint=country,
            country_hint_source="cctld" if country else None,
            legal_form_countries=None,
            reason=None,
        )
    )


def _as_name(value: str) -> RowResult:
    base = str(basename(value))
    if not base:
        return invalid(COLUMNS, INVALID, reason="only a legal form, no name")
    # cleanco keeps the words before the legal form as they were, so the rest of the value is the legal form.
    legal_form = value[len(base) :].strip(" ,;") if value.startswith(base) else ""
    kind, countries, hint = _classify(legal_form) if legal_form else (None, [], None)
    return ok(
        CompanyResult(
            input_kind="name",
            name=base,
            legal_name=value,
            legal_form=legal_form or None,
            legal_form_type=kind,
            normalized_name=str(cleanco_normalized(base)),
            domain=None,
            country_hint=hint,
            country_hint_source="legal_form" if hint else None,
            legal_form_countries=";".join(countries) or None,
            reason=None,
        )
    )


def _one(raw: str) -> RowResult:
    value = _SPACES.sub(" ", raw).strip()
    if not value:
        return invalid(COLUMNS, EMPTY_VALUE, reason="empty")
    if value.casefold() in _PLACEHOLDERS:
        return invalid(COLUMNS, EMPTY_VALUE, reason="placeholder, no company")
    if not any(c.isalnum() for c in value):
        return invalid(COLUMNS, INVALID, reason="no letter or digit")
    if len(value) > MAX_NAME_LENGTH:
        return invalid(COLUMNS, INVALID, reason=f"longer than {MAX_NAME_LENGTH} characters")
    return _as_domain(value) or _as_name(value)


def enrich(values: Sequence[str], sources: Sources = OFFLINE) -> list[RowResult]:
    """Split each company name into name and legal form, or read a domain; equal values are computed once."""
    rows = enrich_each(values, COLUMNS, strip_key, _one)
    return augment(rows, sources.website, _home_domain)


def _home_domain(data: dict[str, Any]) -> str | None:
    # Only a domain input names a website; a company name would need a search to find one.
    return str(data["domain"]) if data.get("input_kind") == "domain" and data.get("domain") else None
