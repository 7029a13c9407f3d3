"""The enrichment registry: every type registered, columns from the models, offline, one bad value never fatal."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from email_validator import validate_email

from functions.enrich import _REGISTRY, _hosts, enrich_values, get_enricher, result_columns
from functions.enrich import email as email_module
from functions.enrich import ip as ip_module
from functions.logic.results import TRAILER

SAMPLES = {
    "email": ["john.doe@example.com", "", "garbage"],
    "phone": ["+1 650 253 0000", "", "garbage"],
    "company": ["Siemens AG", "", "!!!"],
    "domain": ["https://münchen.de:8080/x", "", "garbage"],
    "ip": ["fe80::1%eth0", "", "garbage"],
    "darkweb": ["john@example.com", "", "garbage value"],
    "google": ["pizza", "", "   "],
}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to open a connection or resolve a name."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("enrichment tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_all_seven_types_are_registered() -> None:
    # Then the six job types and the inline google search are there
    assert set(_REGISTRY) == {"email", "phone", "company", "domain", "ip", "darkweb", "google"}


@pytest.mark.parametrize("job_type", sorted(SAMPLES))
def test_every_row_carries_exactly_the_type_columns_of_flat_scalars(job_type: str, no_network: None) -> None:
    # Given a good value, a blank and garbage, with the network cut off
    values = SAMPLES[job_type]
    # When they are enriched through the registry
    results = enrich_values(job_type, values)
    # Then one result per value, every row has exactly the columns, and every cell is a flat scalar
    assert len(results) == len(values)
    columns = result_columns(job_type)
    assert columns and len(set(columns)) == len(columns)
    assert not set(columns) & set(TRAILER)
    for result in results:
        assert tuple(result.data) == columns
        assert all(v is None or isinstance(v, str | int | float | bool) for v in result.data.values())
    assert results[1].status == "invalid" and results[1].error == "empty_value"
    assert results[2].status == "invalid"


def test_unknown_type_is_a_key_error() -> None:
    # Then callers that did not validate the type learn it at once
    with pytest.raises(KeyError):
        get_enricher("fax")


def test_one_value_that_crashes_fails_only_its_row(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an email library that crashes on one value

    def flaky(value: str, **kwargs: Any) -> Any:
        if value == "boom@example.com":
            raise RuntimeError("library bug")
        return validate_email(value, **kwargs)

    monkeypatch.setattr(email_module, "validate_email", flaky)
    # When a batch containing it is enriched
    results = enrich_values("email", ["a@example.com", "boom@example.com", "b@example.com"])
    # Then only that row is an uncharged error; the others are enriched
    assert [(r.status, r.error) for r in results] == [("ok", None), ("error", "enrichment_failed"), ("ok", None)]
    assert tuple(results[1].data) == result_columns("email")


def test_lazy_data_loads_from_the_bundled_files_only(no_network: None) -> None:
    # Given the lazily built Public Suffix List extractor and GeoIP tables dropped, with the network cut off
    _hosts._extractor.cache_clear()
    ip_module._load_geo.cache_clear()
    # When they are built again by a lookup
    split = _hosts.split("www.example.co.uk")
    located = enrich_values("ip", ["1.1.1.1"])[0]
    # Then both come from the files shipped in the packages
    assert split.registrable == "example.co.uk"
    assert located.data["country_code"] == "AU"
