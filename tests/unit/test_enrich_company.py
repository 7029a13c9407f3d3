"""Company enrichment: legal form separated with cleanco, domains read as companies, country hints."""

from __future__ import annotations

import pytest

from functions.enrich import company


def one(value: str) -> tuple[str, str | None, dict[str, object]]:
    result = company.enrich([value])[0]
    return result.status, result.error, result.data


def test_german_legal_form_is_separated_and_hints_germany() -> None:
    # Given a German AG
    status, _, data = one("Siemens AG")
    # Then name and legal form are split and the hint is Germany, from the legal form
    assert status == "ok"
    assert (data["input_kind"], data["name"], data["legal_form"]) == ("name", "Siemens", "AG")
    assert data["legal_name"] == "Siemens AG"
    assert data["legal_form_type"] == "Corporation"
    assert (data["country_hint"], data["country_hint_source"]) == ("DE", "legal_form")
    assert data["legal_form_countries"] == "AT;DE"
    assert data["domain"] is None


@pytest.mark.parametrize(
    ("value", "name", "legal_form", "hint"),
    [
        ("Aldi Süd GmbH", "Aldi Süd", "GmbH", "DE"),
        ("Acme Holdings GmbH & Co. KG", "Acme Holdings", "GmbH & Co. KG", "DE"),
        ("Daddy & Sons, Ltd.", "Daddy & Sons", "Ltd.", "GB"),
        ("Apple Inc.", "Apple", "Inc.", "US"),
        ("Amazon.com, Inc.", "Amazon.com", "Inc.", "US"),
        ("Foo Pty Ltd", "Foo", "Pty Ltd", "AU"),
        ("Koninklijke Philips N.V.", "Koninklijke Philips", "N.V.", "NL"),
        ("Spotify AB", "Spotify", "AB", "SE"),
        ("Bar sp. z o.o.", "Bar", "sp. z o.o.", "PL"),
        ("Tata Consultancy Services Pvt. Ltd.", "Tata Consultancy Services", "Pvt. Ltd.", "IN"),
        ("Sony Group K.K.", "Sony Group", "K.K.", "JP"),
        ("Nestlé S.A.", "Nestlé", "S.A.", None),
        ("SAP SE", "SAP", "SE", None),
        ("Microsoft", "Microsoft", None, None),
    ],
)
def test_real_company_names(value: str, name: str, legal_form: str | None, hint: str | None) -> None:
    # Given a real-world company name
    status, _, data = one(value)
    # Then the name, legal form and (only where the form points to one country) the hint are right
    assert status == "ok"
    assert (data["name"], data["legal_form"], data["country_hint"]) == (name, legal_form, hint)


def test_whitespace_is_collapsed_and_matching_key_is_accent_free() -> None:
    # Given a name with runs of spaces and accents
    _, _, data = one("  Société   Générale  S.A. ")
    # Then the legal name is tidy and the matching key is lower-case without accents
    assert data["legal_name"] == "Société Générale S.A."
    assert data["name"] == "Société Générale"
    assert data["normalized_name"] == "societe generale"


def test_domain_input_gives_name_domain_and_cctld_hint() -> None:
    # Given a company website URL on a country-code TLD
    status, _, data = one("https://www.acme-corp.co.uk/about")
    # Then it is read as a domain: registrable domain, a name from it, and the ccTLD country
    assert status == "ok"
    assert (data["input_kind"], data["domain"], data["name"]) == ("domain", "acme-corp.co.uk", "Acme Corp")
    assert (data["country_hint"], data["country_hint_source"]) == ("GB", "cctld")
    assert data["legal_form"] is None


def test_generic_and_idn_domains() -> None:
    # Given a .com, a .io (sold worldwide) and a German IDN
    com, io, idn = company.enrich(["stripe.com", "openai.io", "müller-bau.de"])
    # Then generic TLDs give no country; the IDN keeps its Unicode name
    assert (com.data["name"], com.data["country_hint"]) == ("Stripe", None)
    assert io.data["country_hint"] is None
    assert (idn.data["domain"], idn.data["name"], idn.data["country_hint"]) == ("müller-bau.de", "Müller Bau", "DE")


@pytest.mark.parametrize(
    ("value", "error", "reason_part"),
    [
        ("", "empty_value", "empty"),
        ("   ", "empty_value", "empty"),
        ("N/A", "empty_value", "placeholder"),
        ("#REF!", "empty_value", "placeholder"),
        ("!!! ???", "invalid_company", "no letter"),
        ("GmbH", "invalid_company", "only a legal form"),
        ("x" * 301, "invalid_company", "longer than"),
    ],
)
def test_values_that_are_no_company_are_invalid(value: str, error: str, reason_part: str) -> None:
    # Given a value with no company name in it
    status, err, data = one(value)
    # Then it is invalid with a reason and every column present
    assert (status, err) == ("invalid", error)
    assert reason_part in str(data["reason"])
    assert tuple(data) == company.COLUMNS


def test_order_kept_and_duplicates_computed_once() -> None:
    # Given repeats with outer spaces
    results = company.enrich(["Apple Inc.", "", " Apple Inc. "])
    # Then one result per input in order, the repeat shared
    assert [r.status for r in results] == ["ok", "invalid", "ok"]
    assert results[0] is results[2]
