"""Builds the online sources from the settings: which providers are on, their limits, and the shared cache."""

from __future__ import annotations

from collections.abc import Mapping

from functions.enrich._http import HttpPolicy, JsonClient
from functions.enrich.darkweb import DarkwebResult, HibpProvider
from functions.enrich.dns_lookup import DnsFacts, DnsProvider
from functions.enrich.google import GoogleResult, SearchProvider
from functions.enrich.online import CachePort, Source, Sources
from functions.enrich.rdap import DomainRegistration, IpNetwork, RdapProvider
from functions.enrich.website import WebsiteFacts, WebsiteProvider
from functions.settings import SECRET_FIELDS, EnrichSettings


def with_secrets(settings: EnrichSettings, secrets: Mapping[str, object]) -> EnrichSettings:
    """The settings with the provider keys of a secret (a JSON object keyed by field name) filled in."""
    update = {k: str(v).strip() for k, v in secrets.items() if k in SECRET_FIELDS and str(v).strip()}
    return settings.model_copy(update=update) if update else settings


def _policy(settings: EnrichSettings, requests_per_minute: float) -> HttpPolicy:
    return HttpPolicy(concurrency=settings.provider_concurrency, requests_per_minute=requests_per_minute)


def from_settings(settings: EnrichSettings, cache: CachePort | None = None) -> Sources:
    """The sources the settings turn on, each asking through the cache (when there is one) with the settings' TTL."""
    ttl = settings.cache_ttl_seconds
    hibp = search = dns = rdap_domain = rdap_ip = website = None
    if settings.website_enabled:
        fetcher = WebsiteProvider(
            timeout=settings.website_timeout_seconds,
            allow_private=settings.website_allow_private,
            concurrency=settings.provider_concurrency,
            # Two tries: a batch of dead sites must still finish well within the worker's timeout.
            attempts=2,
        )
        website = Source("website", WebsiteFacts, fetcher.lookup_many, cache, ttl)
    if settings.rdap_enabled:
        client = JsonClient("rdap", _policy(settings, settings.rdap_requests_per_minute))
        registry = RdapProvider(settings.rdap_base_url, client)
        rdap_domain = Source("rdap-domain", DomainRegistration, registry.lookup_domains, cache, ttl)
        rdap_ip = Source("rdap-ip", IpNetwork, registry.lookup_ips, cache, ttl)
    if settings.dns_enabled:
        nameservers = [n.strip() for n in settings.dns_nameservers.split(",") if n.strip()] or None
        resolver = DnsProvider(
            nameservers, timeout=settings.dns_timeout_seconds, concurrency=settings.provider_concurrency
        )
        dns = Source("dns", DnsFacts, resolver.lookup_many, cache, ttl)
    if settings.hibp_api_key.strip():
        client = JsonClient("hibp", _policy(settings, settings.hibp_requests_per_minute))
        provider = HibpProvider(settings.hibp_api_key.strip(), settings.hibp_base_url, client)
        hibp = Source("hibp", DarkwebResult, provider.lookup_many, cache, ttl)
    if settings.search_api_key.strip() and settings.search_engine_id.strip():
        client = JsonClient("search", _policy(settings, settings.search_requests_per_minute))
        searcher = SearchProvider(
            settings.search_api_key.strip(), settings.search_engine_id.strip(), settings.search_base_url, client
        )
        search = Source("search", GoogleResult, searcher.lookup_many, cache, ttl)
    return Sources(dns=dns, rdap_domain=rdap_domain, rdap_ip=rdap_ip, website=website, hibp=hibp, search=search)
