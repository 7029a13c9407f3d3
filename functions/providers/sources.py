"""Builds the online sources from the settings: which providers are on, their limits, and the shared cache."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from pydantic import BaseModel

from functions.enrich._common import ProviderFailure
from functions.enrich.facts import DarkwebResult, DnsFacts, DomainRegistration, GoogleResult, IpNetwork, WebsiteFacts
from functions.enrich.online import CachePort, Source, Sources
from functions.enrich.phone import checked_region
from functions.providers.dns_resolver import DnsProvider
from functions.providers.hibp import HibpProvider
from functions.providers.http_client import HttpPolicy, JsonClient
from functions.providers.rdap import RdapProvider
from functions.providers.search import SearchProvider
from functions.providers.website import WebsiteProvider
from functions.settings import SECRET_FIELDS, EnrichSettings

T = TypeVar("T", bound=BaseModel)
Lookup = Callable[[Sequence[str]], Sequence[T | ProviderFailure]]


def with_secrets(settings: EnrichSettings, secrets: Mapping[str, object]) -> EnrichSettings:
    """The settings with the provider keys of a secret (a JSON object keyed by field name) filled in."""
    update = {k: str(v).strip() for k, v in secrets.items() if k in SECRET_FIELDS and str(v).strip()}
    return settings.model_copy(update=update) if update else settings


def _policy(settings: EnrichSettings, requests_per_minute: float) -> HttpPolicy:
    return HttpPolicy(concurrency=settings.provider_concurrency, requests_per_minute=requests_per_minute)


def from_settings(settings: EnrichSettings, cache: CachePort | None = None) -> Sources:
    """The sources the settings turn on, each asking through the cache (when there is one) with the settings' TTL."""
    budget = settings.provider_budget_seconds

    def source(name: str, model: type[T], lookup: Lookup[T], requests_per_minute: float | None = None) -> Source[T]:
        # Chunks small enough that a rate-limited provider checks the budget between them.
        chunk = 4 * settings.provider_concurrency
        if requests_per_minute is not None:
            chunk = min(chunk, max(1, int(requests_per_minute / 60 * budget)))
        return Source(name, model, lookup, cache, settings.cache_ttl_seconds, budget_seconds=budget, chunk=chunk)

    hibp = search = dns = rdap_domain = rdap_ip = website = None
    if settings.website_enabled:
        fetcher = WebsiteProvider(
            timeout=settings.website_timeout_seconds,
            allow_private=settings.website_allow_private,
            concurrency=settings.provider_concurrency,
            # Two tries: a dead site costs at most two fetch deadlines of the batch's budget.
            attempts=2,
        )
        website = source("website", WebsiteFacts, fetcher.lookup_many)
    if settings.rdap_enabled:
        rate = settings.rdap_requests_per_minute
        registry = RdapProvider(settings.rdap_base_url, JsonClient("rdap", _policy(settings, rate)))
        rdap_domain = source("rdap-domain", DomainRegistration, registry.lookup_domains, rate)
        rdap_ip = source("rdap-ip", IpNetwork, registry.lookup_ips, rate)
    if settings.dns_enabled:
        nameservers = [n.strip() for n in settings.dns_nameservers.split(",") if n.strip()] or None
        resolver = DnsProvider(
            nameservers, timeout=settings.dns_timeout_seconds, concurrency=settings.provider_concurrency
        )
        dns = source("dns", DnsFacts, resolver.lookup_many)
    if settings.hibp_api_key.strip():
        rate = settings.hibp_requests_per_minute
        client = JsonClient("hibp", _policy(settings, rate))
        provider = HibpProvider(settings.hibp_api_key.strip(), settings.hibp_base_url, client)
        hibp = source("hibp", DarkwebResult, provider.lookup_many, rate)
    if settings.search_api_key.strip() and settings.search_engine_id.strip():
        rate = settings.search_requests_per_minute
        client = JsonClient("search", _policy(settings, rate))
        searcher = SearchProvider(
            settings.search_api_key.strip(), settings.search_engine_id.strip(), settings.search_base_url, client
        )
        search = source("search", GoogleResult, searcher.lookup_many, rate)
    return Sources(
        dns=dns,
        rdap_domain=rdap_domain,
        rdap_ip=rdap_ip,
        website=website,
        hibp=hibp,
        search=search,
        phone_region=checked_region(settings.phone_default_region),
    )
