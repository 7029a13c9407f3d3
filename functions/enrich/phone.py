"""Phone: parsing, formats, region, location, carrier, line type and time zones with phonenumbers (offline).

Numbers written without `+` and country code are read in the default region, env var `BULKAPI_PHONE_DEFAULT_REGION`
(an ISO 3166 alpha-2 code, default `US`; `ZZ` means none: such numbers are then invalid), unless the job names a
`country` or the row has a country column (`enrich(..., regions=)`). A row is `invalid` when the value cannot be
parsed as a number, its length is impossible for its country, or it is outside the ranges assigned there (`reason`
says which, e.g. `too_short`, `invalid_country_code`, `local_number_without_area_code`, `not_valid_in_US`).
Carrier is the original one for the number's range (numbers get ported).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from types import ModuleType

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat, PhoneNumberType, ValidationResult
from pydantic import BaseModel

from functions.enrich._common import EMPTY_VALUE, columns_of, enrich_each, invalid, ok, strip_key
from functions.enrich.online import OFFLINE, Sources
from functions.models import RowResult

INVALID = "invalid_phone"
DEFAULT_REGION_ENV = "BULKAPI_PHONE_DEFAULT_REGION"
_NO_REGION = "ZZ"
_LANG = "en"

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "invalid_country_code",
    NumberParseException.NOT_A_NUMBER: "not_a_number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too_short",
    NumberParseException.TOO_SHORT_NSN: "too_short",
    NumberParseException.TOO_LONG: "too_long",
}
_POSSIBILITY_REASONS = {
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "local_number_without_area_code",
    ValidationResult.INVALID_COUNTRY_CODE: "invalid_country_code",
    ValidationResult.TOO_SHORT: "too_short",
    ValidationResult.INVALID_LENGTH: "invalid_length",
    ValidationResult.TOO_LONG: "too_long",
}


class PhoneResult(BaseModel):
    """The columns of a phone row."""

    e164: str | None
    national: str | None
    international: str | None
    country_code: int | None
    region: str | None
    location: str | None
    carrier: str | None
    line_type: str | None
    time_zones: str | None
    is_valid: bool | None
    is_possible: bool | None
    extension: str | None
    reason: str | None


COLUMNS: tuple[str, ...] = columns_of(PhoneResult)


def checked_region(value: str) -> str:
    """A default region (settings' `phone_default_region`), upper-cased; ValueError when it is not a region."""
    region = value.strip().upper() or "US"
    if region != _NO_REGION and region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{DEFAULT_REGION_ENV}={region!r} is not a region phonenumbers knows (e.g. US, DE, GB, ZZ)")
    return region


@functools.cache
def _offline_data() -> tuple[ModuleType, ModuleType, ModuleType]:
    # Imported on first use: the geocoder's prefix tables take ~0.4 s to import, a cost only phone jobs should pay.
    from phonenumbers import carrier, geocoder, timezone

    return geocoder, carrier, timezone


def _describe(number: PhoneNumber) -> PhoneResult:
    geocoder, carrier, timezone = _offline_data()
    valid = phonenumbers.is_valid_number(number)
    zones = [z for z in timezone.time_zones_for_number(number) if z != "Etc/Unknown"]
    region = phonenumbers.region_code_for_number(number)
    return PhoneResult(
        e164=phonenumbers.format_number(number, PhoneNumberFormat.E164),
        national=phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL),
        international=phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL),
        country_code=number.country_code,
        # "001" is the library's code for non-geographic numbers (+800, +882 ...): no region to show.
        region=region if region and region != "001" else None,
        location=geocoder.description_for_number(number, _LANG) or None,
        carrier=carrier.name_for_number(number, _LANG) or None,
        line_type=PhoneNumberType.to_string(phonenumbers.number_type(number)).lower(),
        time_zones=";".join(zones) or None,
        is_valid=valid,
        is_possible=True,
        extension=number.extension or None,
        reason=None if valid else "not_in_an_assigned_range",
    )


def _one(raw: str, region: str) -> RowResult:
    value = raw.strip()
    if not value:
        return invalid(COLUMNS, EMPTY_VALUE, reason="empty")
    try:
        number = phonenumbers.parse(value, region)
    except NumberParseException as exc:
        reason = _PARSE_REASONS.get(exc.error_type, "not_a_number")
        if reason == "invalid_country_code" and not value.startswith("+"):
            reason = "missing_country_code"
        return invalid(COLUMNS, INVALID, reason=reason)
    possibility = phonenumbers.is_possible_number_with_reason(number)
    if possibility != ValidationResult.IS_POSSIBLE:
        return invalid(COLUMNS, INVALID, is_possible=False, reason=_POSSIBILITY_REASONS.get(possibility, "impossible"))
    if not phonenumbers.is_valid_number(number):
        # A number outside the ranges assigned in its country reaches nobody: an invalid input, not charged. Without
        # `+`, the region it was read in is named, since another region may well have been meant.
        reason = "not_in_an_assigned_range" if value.startswith("+") else f"not_valid_in_{region}"
        return invalid(COLUMNS, INVALID, is_possible=True, is_valid=False, reason=reason)
    return ok(_describe(number))


def enrich(
    values: Sequence[str],
    sources: Sources = OFFLINE,
    region: str | None = None,
    regions: Sequence[str | None] | None = None,
) -> list[RowResult]:
    """Parse and describe each number. Numbers without `+` are read in the row's region (`regions`, one per value,
    None where the row names none), else `region` (the job's country), else the sources' (the deployment's)."""
    default = checked_region(region or sources.phone_region)
    per_row = [r or default for r in regions] if regions is not None else [default] * len(values)
    out: list[RowResult | None] = [None] * len(values)
    for chosen in dict.fromkeys(per_row):
        indexes = [i for i, r in enumerate(per_row) if r == chosen]
        compute: Callable[[str], RowResult] = functools.partial(_one, region=chosen)
        results = enrich_each([values[i] for i in indexes], COLUMNS, strip_key, compute)
        for index, result in zip(indexes, results, strict=True):
            out[index] = result
    return [r for r in out if r is not None]
