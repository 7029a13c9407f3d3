"""Phone enrichment with phonenumbers: formats, region, location, carrier, line type, default region."""

from __future__ import annotations

import pytest

from functions.enrich import phone
from functions.providers.sources import from_settings
from functions.settings import EnrichSettings


def test_international_number_gets_every_format_and_its_place() -> None:
    # Given a Google Mountain View number written with country code and dashes
    result = phone.enrich(["+1 650-253-0000"])[0]
    # Then it is valid, formatted three ways, and placed in California
    assert result.status == "ok"
    assert result.data["e164"] == "+16502530000"
    assert result.data["national"] == "(650) 253-0000"
    assert result.data["international"] == "+1 650-253-0000"
    assert result.data["country_code"] == 1
    assert result.data["region"] == "US"
    assert result.data["location"] == "Mountain View, CA"
    assert result.data["time_zones"] == "America/Los_Angeles"
    assert result.data["line_type"] == "fixed_line_or_mobile"
    assert (result.data["is_valid"], result.data["is_possible"]) == (True, True)


def test_mobile_number_has_carrier_and_line_type() -> None:
    # Given a German mobile number
    result = phone.enrich(["+49 151 23456789"])[0]
    # Then its original carrier and mobile line type are shown
    assert result.data["region"] == "DE"
    assert result.data["line_type"] == "mobile"
    assert result.data["carrier"] == "T-Mobile"
    assert result.data["national"] == "01512 3456789"


def test_number_without_country_code_uses_the_default_region() -> None:
    # Given a US-style number without +1 and no region configured
    # When it is enriched
    result = phone.enrich(["(415) 555-2671"])[0]
    # Then it is read as a US number
    assert result.data["e164"] == "+14155552671"
    assert result.data["location"] == "San Francisco, CA"


def test_default_region_comes_from_the_settings() -> None:
    # Given a deployment configured for Germany
    sources = from_settings(EnrichSettings(phone_default_region="de"))
    # When a Berlin number without country code and a +1 number are enriched
    berlin, us = phone.enrich(["030 901820", "+1 202 456 1111"], sources)
    # Then the first is German, the second keeps its own country code
    assert berlin.data["e164"] == "+4930901820"
    assert berlin.data["location"] == "Berlin"
    assert us.data["region"] == "US"


def test_region_zz_requires_a_country_code() -> None:
    # Given no default region at all
    sources = from_settings(EnrichSettings(phone_default_region="ZZ"))
    # When a number without + is enriched
    result = phone.enrich(["030 901820"], sources)[0]
    # Then it is invalid because its country is unknown
    assert (result.status, result.error, result.data["reason"]) == ("invalid", "invalid_phone", "missing_country_code")


def test_unknown_default_region_is_a_configuration_error() -> None:
    # Given a typo in the configuration
    settings = EnrichSettings(phone_default_region="USA")
    # Then building the function's sources refuses loudly instead of reading every number in the wrong country
    with pytest.raises(ValueError, match="BULKAPI_PHONE_DEFAULT_REGION"):
        from_settings(settings)


def test_extension_tel_uri_and_vanity_letters() -> None:
    # Given an extension, a tel: URI and a vanity number
    ext, tel, vanity = phone.enrich(["+1 650 253 0000 ext. 123", "tel:+1-800-555-0199", "1-800-FLOWERS"])
    # Then each parses; the toll-free ones say so
    assert (ext.data["e164"], ext.data["extension"]) == ("+16502530000", "123")
    assert tel.data["line_type"] == "toll_free"
    assert vanity.data["e164"] == "+18003569377"


def test_non_geographic_number_has_no_region() -> None:
    # Given an international freephone number (+800)
    result = phone.enrich(["+800 1234 5678"])[0]
    # Then it is valid but belongs to no region
    assert result.status == "ok"
    assert result.data["region"] is None
    assert result.data["line_type"] == "toll_free"


def test_possible_but_unassigned_number_is_invalid_and_free() -> None:
    # Given a US number of the right length in an unassigned range
    result = phone.enrich(["+1 555 123 4567"])[0]
    # Then it is invalid (not charged), possible but not valid, with the reason
    assert (result.status, result.error) == ("invalid", "invalid_phone")
    assert (result.data["is_valid"], result.data["is_possible"]) == (False, True)
    assert result.data["reason"] == "not_in_an_assigned_range"


def test_a_number_is_read_in_its_rows_country_then_the_jobs_then_the_default() -> None:
    # Given a Berlin number written nationally, in rows that name Germany, name nothing, or name the US
    values = ["030 7654321", "030 7654321", "030 7654321"]
    # When the job's country is none (the deployment's default, US, applies)
    us = phone.enrich(values)
    # Then the number is not valid in the US: invalid and free, saying where it was read
    assert {(r.status, r.data["reason"]) for r in us} == {("invalid", "not_valid_in_US")}
    # When the rows name their countries and the job says DE
    rows = phone.enrich(values, region="DE", regions=["DE", None, "US"])
    # Then the row's country comes first, then the job's
    assert [r.data["e164"] for r in rows] == ["+49307654321", "+49307654321", None]
    assert [r.status for r in rows] == ["ok", "ok", "invalid"]


@pytest.mark.parametrize(
    ("value", "error", "reason"),
    [
        ("", "empty_value", "empty"),
        ("   ", "empty_value", "empty"),
        ("call me maybe", "invalid_phone", "not_a_number"),
        ("12", "invalid_phone", "too_short"),
        ("+1 555", "invalid_phone", "too_short"),
        ("+999 1234567", "invalid_phone", "invalid_country_code"),
        ("253-0000", "invalid_phone", "local_number_without_area_code"),
        ("+49 30 1234567890123456789", "invalid_phone", "too_long"),
    ],
)
def test_unparseable_or_impossible_numbers_are_invalid(value: str, error: str, reason: str) -> None:
    # Given a value that cannot be a dialable number
    result = phone.enrich([value])[0]
    # Then it is invalid (not charged) with a reason, and still has every column
    assert (result.status, result.error, result.data["reason"]) == ("invalid", error, reason)
    assert tuple(result.data) == phone.COLUMNS


def test_order_kept_and_duplicates_computed_once() -> None:
    # Given repeats with surrounding spaces
    results = phone.enrich(["+44 20 7946 0958", "garbage", " +44 20 7946 0958 "])
    # Then one result per input in order, the repeat shared
    assert [r.status for r in results] == ["ok", "invalid", "ok"]
    assert results[0] is results[2]
    assert results[0].data["location"] == "London"
