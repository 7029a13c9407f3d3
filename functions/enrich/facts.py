"""What the online providers answer, as the lookups read it: plain models, no I/O.

The providers (functions/providers) build these from the network; the lookups (functions/enrich) and the answer cache
read them. Keeping them here lets the lookups name them without importing any network code.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Fact(BaseModel):
    """A provider's answer; its validator is built when first used, not at import (most functions use one or two)."""

    model_config = ConfigDict(defer_build=True)


class DarkwebResult(_Fact):
    """The columns of a darkweb row."""

    query: str | None
    query_type: str | None
    breached: bool | None
    breach_count: int | None
    breaches: str | None
    latest_breach: str | None
    data_classes: str | None
    from_cache: bool | None = None


class GoogleResult(_Fact):
    """The columns of a search row."""

    query: str | None
    total_results: int | None = None
    result_count: int | None = None
    result_1_title: str | None = None
    result_1_url: str | None = None
    result_1_snippet: str | None = None
    result_2_title: str | None = None
    result_2_url: str | None = None
    result_2_snippet: str | None = None
    result_3_title: str | None = None
    result_3_url: str | None = None
    result_3_snippet: str | None = None
    from_cache: bool | None = None


class DnsFacts(_Fact):
    """The DNS columns of a domain."""

    dns_exists: bool
    mx: str | None = None
    mx_null: bool = False
    has_a: bool = False
    has_aaaa: bool = False
    spf: str | None = None
    dmarc: str | None = None
    dmarc_policy: str | None = None


class DomainRegistration(_Fact):
    """The registration of a domain name as its registry publishes it."""

    registrar: str | None
    registered_at: str | None
    expires_at: str | None
    updated_at: str | None
    rdap_status: str | None
    registered: bool


class IpNetwork(_Fact):
    """The network an IP address belongs to, as its regional internet registry publishes it."""

    network_name: str | None
    network_handle: str | None
    network_range: str | None
    network_cidr: str | None
    network_country: str | None
    network_type: str | None
    network_owner: str | None
    network_registered_at: str | None
    network_updated_at: str | None


class WebsiteFacts(_Fact):
    """What a company's home page says about it."""

    website_url: str | None
    website_status: int | None
    website_title: str | None
    website_description: str | None
    linkedin: str | None
    twitter: str | None
    facebook: str | None
    instagram: str | None
    youtube: str | None
    github: str | None
