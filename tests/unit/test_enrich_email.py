"""Email enrichment: syntax, normalization, provider flags, validity rule and guesses, offline."""

from __future__ import annotations

import hashlib

from functions.enrich import email


def one(value: str) -> tuple[str, str | None, dict[str, object]]:
    result = email.enrich([value])[0]
    return result.status, result.error, result.data


def test_plain_business_address_is_valid_with_name_and_company_guess() -> None:
    # Given a typical B2B address with mixed case
    # When it is enriched
    status, error, data = one("John.Doe@Acme-Corp.co.uk")
    # Then it is normalized to lower case and split, with a clear name and company guess
    assert (status, error) == ("ok", None)
    assert data["normalized"] == "john.doe@acme-corp.co.uk"
    assert data["local_part"] == "john.doe"
    assert data["domain"] == "acme-corp.co.uk"
    assert data["registrable_domain"] == "acme-corp.co.uk"
    assert data["validity"] == "valid"
    assert data["reason"] is None
    assert (data["first_name"], data["last_name"], data["full_name"]) == ("John", "Doe", "John Doe")
    assert data["company_guess"] == "Acme Corp"
    assert data["is_free_provider"] is False
    assert data["gravatar_hash"] == hashlib.md5(b"john.doe@acme-corp.co.uk").hexdigest()


def test_plus_tag_is_separated_and_free_provider_flagged() -> None:
    # Given a Gmail address with a sub-address tag
    status, _, data = one("jane.roe+newsletters@gmail.com")
    # Then the tag is its own column, the provider is free, and no company is guessed from gmail.com
    assert status == "ok"
    assert data["tag"] == "newsletters"
    assert data["normalized"] == "jane.roe+newsletters@gmail.com"
    assert data["is_free_provider"] is True
    assert data["company_guess"] is None
    assert data["full_name"] == "Jane Roe"
    assert data["validity"] == "valid"


def test_quoted_local_part_is_unquoted_when_possible_and_risky_otherwise() -> None:
    # Given a needlessly quoted local part and one that must stay quoted
    (_, _, needless), (status, _, needed) = (one('"john.doe"@example.com'), one('"john doe"@example.com'))
    # Then the first normalizes to the plain address, the second stays quoted and is risky
    assert needless["normalized"] == "john.doe@example.com"
    assert needless["validity"] == "valid"
    assert status == "ok"
    assert needed["normalized"] == '"john doe"@example.com'
    assert needed["validity"] == "risky"
    assert needed["reason"] == "quoted_local_part"
    assert needed["full_name"] is None


def test_idn_domain_shown_in_unicode_from_either_form() -> None:
    # Given the same mailbox written with a Unicode and with a punycode domain
    results = email.enrich(["info@münchen.de", "Info@xn--mnchen-3ya.de"])
    # Then both normalize to the Unicode form; info@ is a role account, so risky
    assert [r.data["normalized"] for r in results] == ["info@münchen.de", "info@münchen.de"]
    assert results[0].data["registrable_domain"] == "münchen.de"
    assert results[0].data["is_role_account"] is True
    assert results[0].data["validity"] == "risky"
    assert results[0].data["company_guess"] == "München"


def test_disposable_domain_is_risky() -> None:
    # Given an address at a throw-away mail service
    status, _, data = one("qwerty123@mailinator.com")
    # Then it is flagged disposable and risky, and no company is guessed
    assert status == "ok"
    assert data["is_disposable"] is True
    assert data["validity"] == "risky"
    assert "disposable_domain" in str(data["reason"])
    assert data["company_guess"] is None


def test_role_accounts_and_postmaster_case() -> None:
    # Given role mailboxes in various cases
    results = email.enrich(["Postmaster@Example.org", "sales@stripe.com", "no-reply@github.com"])
    # Then each is a role account, risky, without a personal name guess
    assert [r.data["is_role_account"] for r in results] == [True, True, True]
    assert [r.data["validity"] for r in results] == ["risky", "risky", "risky"]
    assert results[0].data["normalized"] == "postmaster@example.org"
    assert all(r.data["full_name"] is None for r in results)


def test_unknown_tld_gives_unknown_validity() -> None:
    # Given a well-formed address on a TLD the Public Suffix List does not know
    status, _, data = one("ops@intranet.corp")
    # Then nothing can be said offline: ok but unknown
    assert status == "ok"
    assert data["validity"] == "unknown"
    assert data["registrable_domain"] is None


def test_name_guess_only_when_clear() -> None:
    # Given local parts from clear to unclear
    values = ["mary-ann.smith85@ibm.com", "jdoe@ibm.com", "j.doe@ibm.com", "John Smith <js@ibm.com>"]
    results = email.enrich(values)
    # Then only the clear ones get a name; a display name counts as clear
    assert [r.data["full_name"] for r in results] == ["Mary-Ann Smith", None, None, "John Smith"]
    assert results[0].data["company_guess"] == "IBM"


def test_non_ascii_local_part_is_risky() -> None:
    # Given an internationalized mailbox name (needs SMTPUTF8)
    _, _, data = one("josé@example.es")
    # Then it is well-formed but risky
    assert data["normalized"] == "josé@example.es"
    assert data["validity"] == "risky"
    assert data["reason"] == "non_ascii_local_part"


def test_invalid_syntax_and_blank_values_are_invalid_and_carry_every_column() -> None:
    # Given garbage, a missing TLD, a double dot, blanks and a special-use domain
    values = ["not-an-email", "a@b", "john..doe@example.com", "", "   ", "user@printer.local"]
    # When they are enriched
    results = email.enrich(values)
    # Then none is ok; syntax problems say why, blanks are empty values; every row has every column
    assert [r.status for r in results] == ["invalid"] * 6
    assert [r.error for r in results] == [
        "invalid_email",
        "invalid_email",
        "invalid_email",
        "empty_value",
        "empty_value",
        "invalid_email",
    ]
    assert "@-sign" in str(results[0].data["reason"])
    assert all(r.data["validity"] == "invalid" for r in results)
    assert all(tuple(r.data) == email.COLUMNS for r in results)


def test_whitespace_and_mailto_are_tolerated() -> None:
    # Given an address copied with spaces and a mailto: prefix
    results = email.enrich(["  alice@example.com\t", "mailto:alice@example.com"])
    # Then both normalize to the bare address
    assert [r.data["normalized"] for r in results] == ["alice@example.com", "alice@example.com"]


def test_order_kept_and_duplicates_computed_once() -> None:
    # Given a batch with repeats differing only in case and spaces
    values = ["a@example.com", "B@example.com", " A@EXAMPLE.COM ", "a@example.com"]
    # When it is enriched
    results = email.enrich(values)
    # Then there is one result per input, in order, and equal values share one result
    assert [r.data["normalized"] for r in results] == [
        "a@example.com",
        "b@example.com",
        "a@example.com",
        "a@example.com",
    ]
    assert results[0] is results[2] is results[3]
