"""RDAP domain registrations and IP networks, against a scripted server on 127.0.0.1."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from functions.enrich._common import ProviderFailure
from functions.providers.rdap import DomainRegistration, IpNetwork, RdapProvider
from tests.unit.test_provider_http import Reply, ScriptedServer, Seen, Sleeps, quick_client, scripted_server


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    """The scripted server for this test."""
    yield from scripted_server(monkeypatch)


def vcard(*props: list[Any]) -> list[Any]:
    """A jCard with a version and the given properties."""
    return ["vcard", [["version", {}, "text", "4.0"], *props]]


# The shape of Verisign's answer for google.com (trimmed: links, notices, most nameservers).
VERISIGN_GOOGLE: dict[str, Any] = {
    "objectClassName": "domain",
    "handle": "2138514_DOMAIN_COM-VRSN",
    "ldhName": "GOOGLE.COM",
    "links": [
        {"value": "https://rdap.verisign.com/com/v1/domain/GOOGLE.COM", "rel": "self", "type": "application/rdap+json"}
    ],
    "status": [
        "client delete prohibited",
        "client transfer prohibited",
        "client update prohibited",
        "server delete prohibited",
        "server transfer prohibited",
        "server update prohibited",
    ],
    "entities": [
        {
            "objectClassName": "entity",
            "handle": "292",
            "roles": ["registrar"],
            "publicIds": [{"type": "IANA Registrar ID", "identifier": "292"}],
            "vcardArray": vcard(["fn", {}, "text", "MarkMonitor Inc."]),
            "entities": [
                {
                    "objectClassName": "entity",
                    "roles": ["abuse"],
                    "vcardArray": vcard(
                        ["fn", {}, "text", ""],
                        ["tel", {"type": "voice"}, "uri", "tel:+1.2086851750"],
                        ["email", {}, "text", "abusecomplaints@markmonitor.com"],
                    ),
                }
            ],
        }
    ],
    "events": [
        {"eventAction": "registration", "eventDate": "1997-09-15T04:00:00Z"},
        {"eventAction": "expiration", "eventDate": "2028-09-14T04:00:00Z"},
        {"eventAction": "last changed", "eventDate": "2019-09-09T15:39:04Z"},
        {"eventAction": "last update of RDAP database", "eventDate": "2024-05-01T10:21:19Z"},
    ],
    "secureDNS": {"delegationSigned": False},
    "nameservers": [{"objectClassName": "nameserver", "ldhName": "NS1.GOOGLE.COM"}],
    "rdapConformance": ["rdap_level_0", "icann_rdap_technical_implementation_guide_0"],
    "notices": [{"title": "Terms of Use", "description": ["Service subject to Terms of Use."]}],
}

# The shape of ARIN's answer for 8.8.8.8: cidr0, local-time event dates, the organisation as registrant.
ARIN_GOOGLE: dict[str, Any] = {
    "rdapConformance": ["nro_rdap_profile_0", "rdap_level_0", "cidr0", "arin_originas0"],
    "objectClassName": "ip network",
    "handle": "NET-8-8-8-0-2",
    "startAddress": "8.8.8.0",
    "endAddress": "8.8.8.255",
    "ipVersion": "v4",
    "name": "GOGL",
    "type": "DIRECT ALLOCATION",
    "parentHandle": "NET-8-0-0-0-0",
    "status": ["active"],
    "port43": "whois.arin.net",
    "events": [
        {"eventAction": "last changed", "eventDate": "2023-12-28T17:24:56-05:00"},
        {"eventAction": "registration", "eventDate": "2023-12-28T17:24:33-05:00"},
    ],
    "entities": [
        {
            "objectClassName": "entity",
            "handle": "GOGL",
            "roles": ["registrant"],
            "vcardArray": vcard(
                ["fn", {}, "text", "Google LLC"],
                [
                    "adr",
                    {"label": "1600 Amphitheatre Parkway\nMountain View\nCA\n94043\nUnited States"},
                    "text",
                    [""] * 7,
                ],
                ["kind", {}, "text", "org"],
            ),
            "entities": [
                {
                    "objectClassName": "entity",
                    "handle": "ABUSE5250-ARIN",
                    "roles": ["abuse"],
                    "vcardArray": vcard(["fn", {}, "text", "Abuse"], ["kind", {}, "text", "group"]),
                }
            ],
        }
    ],
    "cidr0_cidrs": [{"v4prefix": "8.8.8.0", "length": 24}],
    "arin_originas0_originautnums": [],
}

# The shape of a RIPE answer without cidr0: a range that is not one block, the holder nested under a contact.
RIPE_RANGE: dict[str, Any] = {
    "objectClassName": "ip network",
    "handle": "193.0.0.0 - 193.0.11.255",
    "startAddress": "193.0.0.0",
    "endAddress": "193.0.11.255",
    "ipVersion": "v4",
    "name": "RIPE-NCC",
    "type": "ASSIGNED PA",
    "country": "NL",
    "status": ["active"],
    "entities": [
        {
            "objectClassName": "entity",
            "handle": "BRD-RIPE",
            "roles": ["technical"],
            "entities": [
                {
                    "objectClassName": "entity",
                    "handle": "ORG-RIEN1-RIPE",
                    "roles": ["registrant"],
                    "vcardArray": vcard(["fn", {}, "text", "Reseaux IP Europeens Network Coordination Centre"]),
                }
            ],
        },
        {
            "objectClassName": "entity",
            "handle": "RIPE-NCC-MNT",
            "roles": ["administrative"],
            "vcardArray": vcard(["fn", {}, "text", "RIPE NCC maintainer"]),
        },
    ],
    "events": [{"eventAction": "registration", "eventDate": "2003-03-17T12:15:57Z"}],
}


def rdap(server: ScriptedServer, sleeps: Sleeps | None = None, **policy: object) -> RdapProvider:
    """An RDAP provider pointed at the test server with tiny timeouts and recorded backoff."""
    return RdapProvider(server.url, quick_client("rdap-test", sleeps, **policy))


def test_registered_domain_reports_registrar_dates_and_status(server: ScriptedServer) -> None:
    # Given a registry answering for google.com
    server.script(Reply(body=VERISIGN_GOOGLE, headers={"Content-Type": "application/rdap+json"}))
    # When the domain is looked up
    answers = rdap(server).lookup_domains(["google.com"])
    # Then the registrar, the dates and the status list are reported
    assert answers == [
        DomainRegistration(
            registrar="MarkMonitor Inc.",
            registered_at="1997-09-15T04:00:00Z",
            expires_at="2028-09-14T04:00:00Z",
            updated_at="2019-09-09T15:39:04Z",
            rdap_status="client delete prohibited;client transfer prohibited;client update prohibited;"
            "server delete prohibited;server transfer prohibited;server update prohibited",
            registered=True,
        )
    ]
    # And the server was asked the RDAP way
    assert server.requests[0].path == "/domain/google.com"
    assert server.requests[0].headers["accept"] == "application/rdap+json"


def test_internationalized_domain_is_asked_in_its_ascii_form(server: ScriptedServer) -> None:
    # Given a registry that knows the name
    server.script(Reply(body={**VERISIGN_GOOGLE, "ldhName": "xn--mnchen-3ya.de"}))
    # When the Unicode name is looked up
    rdap(server).lookup_domains(["München.de"])
    # Then the registry was asked for its IDNA form
    assert server.requests[0].path == "/domain/xn--mnchen-3ya.de"


def test_unregistered_domain_is_an_answer_not_a_failure(server: ScriptedServer) -> None:
    # Given a registry answering 404 with an RDAP error body
    server.script(Reply(status=404, body={"errorCode": 404, "title": "Not Found"}))
    # When a free name is looked up
    answers = rdap(server).lookup_domains(["free-name-4711.com"])
    # Then it is reported as not registered, asked once
    assert answers == [
        DomainRegistration(
            registrar=None, registered_at=None, expires_at=None, updated_at=None, rdap_status=None, registered=False
        )
    ]
    assert len(server.requests) == 1


def test_arin_network_with_cidr0(server: ScriptedServer) -> None:
    # Given ARIN answering for 8.8.8.8
    server.script(Reply(body=ARIN_GOOGLE))
    # When the address is looked up
    answers = rdap(server).lookup_ips(["8.8.8.8"])
    # Then the network is described with the listed CIDR, the registrant as owner and dates in UTC
    assert answers == [
        IpNetwork(
            network_name="GOGL",
            network_handle="NET-8-8-8-0-2",
            network_range="8.8.8.0-8.8.8.255",
            network_cidr="8.8.8.0/24",
            network_country=None,
            network_type="DIRECT ALLOCATION",
            network_owner="Google LLC",
            network_registered_at="2023-12-28T22:24:33Z",
            network_updated_at="2023-12-28T22:24:56Z",
        )
    ]
    assert server.requests[0].path == "/ip/8.8.8.8"


def test_ripe_network_without_cidr0_computes_the_blocks(server: ScriptedServer) -> None:
    # Given a RIPE answer without cidr0 whose range spans two blocks and whose registrant is nested
    server.script(Reply(body=RIPE_RANGE))
    # When an address in it is looked up
    [answer] = rdap(server).lookup_ips(["193.0.6.139"])
    # Then the blocks are computed from the range and the nested registrant wins over the admin contact
    assert isinstance(answer, IpNetwork)
    assert answer.network_cidr == "193.0.0.0/21;193.0.8.0/22"
    assert answer.network_owner == "Reseaux IP Europeens Network Coordination Centre"
    assert (answer.network_country, answer.network_registered_at, answer.network_updated_at) == (
        "NL",
        "2003-03-17T12:15:57Z",
        None,
    )


def test_ipv6_address_is_asked_compressed(server: ScriptedServer) -> None:
    # Given a server answering a v6 network with a v6 cidr0 entry
    server.script(
        Reply(
            body={
                "objectClassName": "ip network",
                "startAddress": "2001:4860::",
                "endAddress": "2001:4860:ffff:ffff:ffff:ffff:ffff:ffff",
                "cidr0_cidrs": [{"v6prefix": "2001:4860::", "length": 32}],
            }
        )
    )
    # When an expanded v6 address is looked up
    [answer] = rdap(server).lookup_ips(["2001:4860:4860:0000:0000:0000:0000:8888"])
    # Then the server saw the compressed form and the v6 block is reported
    assert server.requests[0].path == "/ip/2001:4860:4860::8888"
    assert isinstance(answer, IpNetwork)
    assert answer.network_cidr == "2001:4860::/32"


def test_unknown_ip_is_rdap_not_found(server: ScriptedServer) -> None:
    # Given a server answering 404
    server.script(Reply(status=404, body=b""))
    # When an address is looked up
    answers = rdap(server).lookup_ips(["192.0.2.1"])
    # Then the answer is the rdap_not_found failure
    assert answers == [ProviderFailure("rdap_not_found")]


def test_values_that_are_not_queries_are_refused_without_asking(server: ScriptedServer) -> None:
    # Given a provider, when a domain that is an IP and an IP that is a word are looked up
    provider = rdap(server)
    domains = provider.lookup_domains(["8.8.8.8", "bad_label!.com"])
    ips = provider.lookup_ips(["not-an-ip"])
    # Then each is an invalid query and the server was never asked
    assert domains == [ProviderFailure("rdap_invalid_query")] * 2
    assert ips == [ProviderFailure("rdap_invalid_query")]
    assert server.requests == []


def test_timeout_is_provider_timeout(server: ScriptedServer) -> None:
    # Given a registry slower than the client's timeout
    server.script(Reply(delay=5.0, body=VERISIGN_GOOGLE))
    # When a domain is looked up with two attempts
    answers = rdap(server, attempts=2).lookup_domains(["google.com"])
    # Then both attempts timed out and the answer says so
    assert answers == [ProviderFailure("provider_timeout")]
    assert len(server.requests) == 2


def test_429_waits_for_retry_after_then_answers(server: ScriptedServer) -> None:
    # Given a bootstrap server rate limiting once with Retry-After, then answering
    server.script(Reply(status=429, headers={"Retry-After": "7"}, body={"errorCode": 429}), Reply(body=ARIN_GOOGLE))
    sleeps = Sleeps()
    # When an address is looked up
    [answer] = rdap(server, sleeps).lookup_ips(["8.8.8.8"])
    # Then the client slept exactly what the server asked, and the answer came
    assert sleeps.calls == [7.0]
    assert isinstance(answer, IpNetwork)
    assert answer.network_name == "GOGL"


def test_5xx_then_success(server: ScriptedServer) -> None:
    # Given a registry failing twice, then answering
    server.script(Reply(status=503, body=b"down"), Reply(status=500, body=b"oops"), Reply(body=VERISIGN_GOOGLE))
    sleeps = Sleeps()
    # When a domain is looked up with three attempts
    [answer] = rdap(server, sleeps, attempts=3).lookup_domains(["google.com"])
    # Then it backed off twice and got the registration
    assert sleeps.calls == [0.1, 0.2]
    assert isinstance(answer, DomainRegistration)
    assert answer.registrar == "MarkMonitor Inc."


def _broken(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(VERISIGN_GOOGLE)
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    "body",
    [
        [VERISIGN_GOOGLE],
        "domain",
        _broken(objectClassName=None),
        _broken(objectClassName="entity"),
        _broken(status="active"),
        _broken(events={"eventAction": "registration"}),
        _broken(events=[{"eventDate": "1997-09-15T04:00:00Z"}]),
        _broken(entities=[{"roles": "registrar"}]),
    ],
    ids=["list", "string", "no-class", "wrong-class", "status-str", "events-obj", "event-no-action", "roles-str"],
)
def test_malformed_answer_is_a_bad_response(server: ScriptedServer, body: Any) -> None:
    # Given a server answering 200 with JSON that is not an RDAP domain
    server.script(Reply(body=body))
    # When a domain is looked up
    answers = rdap(server).lookup_domains(["google.com"])
    # Then the answer is a bad response, asked once
    assert answers == [ProviderFailure("provider_bad_response")]
    assert len(server.requests) == 1


def test_ip_answer_of_the_wrong_class_is_a_bad_response(server: ScriptedServer) -> None:
    # Given a server answering an ip lookup with a domain object
    server.script(Reply(body=VERISIGN_GOOGLE))
    # When an address is looked up, then it is a bad response
    assert rdap(server).lookup_ips(["8.8.8.8"]) == [ProviderFailure("provider_bad_response")]


def test_bootstrap_redirect_is_followed_to_the_registry(server: ScriptedServer) -> None:
    # Given a bootstrap path that redirects to the registry's path on the same server
    def respond(seen: Seen) -> Reply:
        if seen.path == "/domain/google.com":
            return Reply(status=302, headers={"Location": f"{server.url}/com/v1/domain/google.com"}, body=b"")
        return Reply(body=VERISIGN_GOOGLE)

    server.respond = respond
    # When a domain is looked up
    [answer] = rdap(server).lookup_domains(["google.com"])
    # Then the redirect was followed, with the RDAP Accept header kept, and the registration came back
    assert [s.path for s in server.requests] == ["/domain/google.com", "/com/v1/domain/google.com"]
    assert server.requests[1].headers["accept"] == "application/rdap+json"
    assert isinstance(answer, DomainRegistration)
    assert answer.registered is True


def test_lookups_keep_their_order(server: ScriptedServer) -> None:
    # Given a server that knows one domain and not the other
    server.respond = lambda seen: (
        Reply(body=VERISIGN_GOOGLE) if seen.path == "/domain/google.com" else Reply(status=404, body=b"")
    )
    # When both are looked up together
    answers = rdap(server, concurrency=4).lookup_domains(["unknown-4711.com", "google.com", "unknown-4712.com"])
    # Then each answer is in its query's place
    assert [a.registered for a in answers if isinstance(a, DomainRegistration)] == [False, True, False]
