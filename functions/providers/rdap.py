"""RDAP (RFC 9083): who registered a domain and when, who holds an IP network; an online provider.

`RdapProvider(base_url="https://rdap.org", client=None)` asks `GET {base}/domain/{ascii-name}` and
`GET {base}/ip/{address}` with `Accept: application/rdap+json`. rdap.org is a bootstrap service: it answers with a
redirect to the authoritative registry or RIR, which the client follows. The client (default `JsonClient("rdap")`)
owns timeouts, retries with backoff and Retry-After, the rate limit and the concurrency of `lookup_*`.

- A domain answers `DomainRegistration`; 404 means the name is not registered (`registered=False`).
- An address answers `IpNetwork`; 404 is the failure `rdap_not_found`.
- An answer that is not an RDAP object of the expected class is `provider_bad_response`; a value that is not a
  domain name or an IP address is `rdap_invalid_query` (callers normally validate before asking).
- Other failures carry the client's codes: `provider_timeout`, `provider_rate_limited`, `provider_error`.

Dates are the RDAP event dates as ISO 8601 in UTC (`...Z`); a date that does not parse is passed on as given.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.enrich._common import ProviderFailure
from functions.enrich._hosts import HostError, to_host
from functions.enrich.facts import DomainRegistration, IpNetwork
from functions.providers.http_client import PROVIDER_BAD_RESPONSE, JsonClient, ProviderError

RDAP_DEFAULT_BASE_URL = "https://rdap.org"
RDAP_NOT_FOUND = "rdap_not_found"
RDAP_INVALID_QUERY = "rdap_invalid_query"
_HEADERS = {"Accept": "application/rdap+json"}

ModelT = TypeVar("ModelT", bound=BaseModel)


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: str = Field(alias="eventAction")
    date: str | None = Field(default=None, alias="eventDate")


class _Entity(BaseModel):
    model_config = ConfigDict(extra="ignore")

    handle: str | None = None
    roles: list[str] = Field(default_factory=list)
    # jCard (RFC 7095) is loosely typed; fn() reads what it needs and tolerates the rest.
    vcard: list[Any] | None = Field(default=None, alias="vcardArray")
    entities: list[_Entity] = Field(default_factory=list)

    def fn(self) -> str | None:
        """The formatted name of the entity's vCard, if it has one."""
        if not self.vcard or len(self.vcard) < 2 or not isinstance(self.vcard[1], list):
            return None
        for prop in self.vcard[1]:
            if isinstance(prop, list) and len(prop) >= 4 and prop[0] == "fn" and isinstance(prop[3], str):
                return prop[3].strip() or None
        return None


class _Object(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: list[str] = Field(default_factory=list)
    events: list[_Event] = Field(default_factory=list)
    entities: list[_Entity] = Field(default_factory=list)

    def event(self, action: str) -> str | None:
        """The date of the first event with this action, normalized to UTC."""
        for event in self.events:
            if event.action == action and event.date:
                return _utc(event.date)
        return None


class _Domain(_Object):
    object_class: Literal["domain"] = Field(alias="objectClassName")


class _Cidr(BaseModel):
    model_config = ConfigDict(extra="ignore")

    v4prefix: str | None = None
    v6prefix: str | None = None
    length: int


class _Network(_Object):
    object_class: Literal["ip network"] = Field(alias="objectClassName")
    handle: str | None = None
    name: str | None = None
    type: str | None = None
    country: str | None = None
    start_address: str | None = Field(default=None, alias="startAddress")
    end_address: str | None = Field(default=None, alias="endAddress")
    cidrs: list[_Cidr] = Field(default_factory=list, alias="cidr0_cidrs")


def _utc(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        return value
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse(model: type[ModelT], body: Any) -> ModelT:
    if not isinstance(body, dict):
        raise ProviderError(PROVIDER_BAD_RESPONSE, "the RDAP answer is not an object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ProviderError(PROVIDER_BAD_RESPONSE, f"not an RDAP {model.__name__.strip('_').lower()}") from exc


def _with_role(entities: Iterable[_Entity], role: str) -> str | None:
    for entity in entities:
        name = entity.fn() if role in entity.roles else None
        if name:
            return name
    return None


def network_owner(entities: Sequence[_Entity]) -> str | None:
    """The holder of a network: the registrant, else the administrative contact, else the first named entity."""
    # RIRs differ: ARIN puts the organisation at the top, some registries nest it one level below a contact.
    reachable = [*entities, *(child for entity in entities for child in entity.entities)]
    return (
        _with_role(reachable, "registrant")
        or _with_role(reachable, "administrative")
        or next((name for name in (e.fn() for e in reachable) if name), None)
    )


def network_cidr(network: _Network) -> str | None:
    """The CIDR blocks of a network: the server's cidr0 list, else computed from its first and last address."""
    listed = [f"{c.v4prefix or c.v6prefix}/{c.length}" for c in network.cidrs if c.v4prefix or c.v6prefix]
    if listed:
        return ";".join(listed)
    if not network.start_address or not network.end_address:
        return None
    try:
        first = ipaddress.ip_address(network.start_address)
        last = ipaddress.ip_address(network.end_address)
        blocks = ipaddress.summarize_address_range(first, last)
        return ";".join(str(block) for block in blocks) or None
    except (TypeError, ValueError):
        # Mixed versions, a reversed range or a value that is not an address: no CIDR rather than a failed row.
        return None


class RdapProvider:
    """RDAP through a bootstrap service (rdap.org by default): domain registrations and IP networks."""

    def __init__(self, base_url: str = RDAP_DEFAULT_BASE_URL, client: JsonClient | None = None) -> None:
        self._base_url = base_url.rstrip("/")
        self._client = client or JsonClient("rdap")

    def lookup_domain(self, domain: str) -> DomainRegistration:
        """The registration of one domain name; raises ProviderError when RDAP cannot answer."""
        try:
            name = to_host(domain).ascii
        except HostError as exc:
            raise ProviderError(RDAP_INVALID_QUERY, str(exc)) from exc
        body = self._client.get_json(f"{self._base_url}/domain/{quote(name, safe='')}", _HEADERS, absent=(404,))
        if body is None:
            return DomainRegistration(
                registrar=None, registered_at=None, expires_at=None, updated_at=None, rdap_status=None, registered=False
            )
        domain_object = _parse(_Domain, body)
        return DomainRegistration(
            registrar=_with_role(domain_object.entities, "registrar"),
            registered_at=domain_object.event("registration"),
            expires_at=domain_object.event("expiration"),
            updated_at=domain_object.event("last changed"),
            rdap_status=";".join(domain_object.status) or None,
            registered=True,
        )

    def lookup_ip(self, ip: str) -> IpNetwork:
        """The network holding one IP address; raises ProviderError when RDAP cannot answer."""
        try:
            address = ipaddress.ip_address(ip.strip())
        except ValueError as exc:
            raise ProviderError(RDAP_INVALID_QUERY, "not an IP address") from exc
        body = self._client.get_json(f"{self._base_url}/ip/{address.compressed}", _HEADERS, absent=(404,))
        if body is None:
            raise ProviderError(RDAP_NOT_FOUND, str(address))
        network = _parse(_Network, body)
        start, end = network.start_address, network.end_address
        return IpNetwork(
            network_name=network.name,
            network_handle=network.handle,
            network_range=f"{start}-{end}" if start and end else None,
            network_cidr=network_cidr(network),
            network_country=network.country,
            network_type=network.type,
            network_owner=network_owner(network.entities),
            network_registered_at=network.event("registration"),
            network_updated_at=network.event("last changed"),
        )

    def lookup_domains(self, domains: Sequence[str]) -> list[DomainRegistration | ProviderFailure]:
        """One answer per domain, in order, looked up concurrently within the client's limits."""
        return self._client.map_queries(self.lookup_domain, domains)

    def lookup_ips(self, ips: Sequence[str]) -> list[IpNetwork | ProviderFailure]:
        """One answer per IP address, in order, looked up concurrently within the client's limits."""
        return self._client.map_queries(self.lookup_ip, ips)
