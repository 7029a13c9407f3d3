"""The DNS provider against a scripted DNS server (UDP and TCP) on 127.0.0.1, built with dnspython."""

from __future__ import annotations

import logging
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from functions.enrich._common import ProviderFailure
from functions.providers.dns_resolver import DnsFacts, DnsProvider, parse_nameserver
from functions.providers.http_client import ProviderError
from tests.unit.test_provider_http import Sleeps

# Timeouts are short only where a test waits for one; a server that answers gets a margin for a loaded CI machine
# (at 0.2 s, a busy run timed out some questions before they fell back to TCP).
QUICK_TIMEOUT = 0.2
ANSWERED_TIMEOUT = 2.0

# name -> record type -> records in zone-file text; a name not in the zone is NXDOMAIN.
Zone = dict[str, dict[str, list[str]]]
# (question, transport "udp" | "tcp") -> the wire answer, or None to stay silent.
Responder = Callable[[dns.message.QueryMessage, str], bytes | None]


@dataclass(frozen=True)
class Asked:
    """A question the server received."""

    name: str
    rdtype: str
    transport: str
    edns_payload: int | None


class DnsServer:
    """A DNS server on 127.0.0.1 (UDP and TCP on one port) answering from `respond`; `delay` holds answers back."""

    def __init__(self) -> None:
        self.asked: list[Asked] = []
        self.respond: Responder = zone_responder({})
        self.delay = 0.0
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._udp, self._tcp = self._bind()
        self._threads = [
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
            for s in (self._udp, self._tcp)
        ]

    @property
    def nameserver(self) -> str:
        """The server as an "ip:port" nameserver entry."""
        host, port = self._udp.server_address[:2]
        return f"{host!s}:{port}"

    def questions(self) -> list[tuple[str, str]]:
        """The distinct (name, type) questions asked, sorted."""
        return sorted({(a.name, a.rdtype) for a in self.asked})

    def answer(self, wire: bytes, transport: str) -> bytes | None:
        """Record the question and compute the scripted answer (held back by `delay`)."""
        query = dns.message.from_wire(wire)
        assert isinstance(query, dns.message.QueryMessage)
        question = query.question[0]
        with self._lock:
            self.asked.append(
                Asked(
                    question.name.to_text(omit_final_dot=True),
                    dns.rdatatype.to_text(question.rdtype),
                    transport,
                    query.payload if query.edns >= 0 else None,
                )
            )
        if self.delay:
            self.release.wait(self.delay)
        return self.respond(query, transport)

    def _bind(self) -> tuple[socketserver.ThreadingUDPServer, socketserver.ThreadingTCPServer]:
        server = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                reply = server.answer(data, "udp")
                if reply is not None:
                    sock.sendto(reply, self.client_address)

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                size = int.from_bytes(self.rfile.read(2), "big")
                reply = server.answer(self.rfile.read(size), "tcp")
                if reply is not None:
                    self.wfile.write(len(reply).to_bytes(2, "big") + reply)

        # Both transports must share the port the resolver is given; a random UDP port may be taken for TCP.
        for _ in range(20):
            udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Udp)
            try:
                tcp = socketserver.ThreadingTCPServer(("127.0.0.1", udp.server_address[1]), Tcp)
            except OSError:
                udp.server_close()
                continue
            udp.daemon_threads = tcp.daemon_threads = True
            return udp, tcp
        raise RuntimeError("no free port for both UDP and TCP")

    def __enter__(self) -> DnsServer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        for s in (self._udp, self._tcp):
            s.shutdown()
            s.server_close()


@pytest.fixture
def server() -> Iterator[DnsServer]:
    """The scripted DNS server for this test."""
    with DnsServer() as s:
        yield s


def zone_responder(records: Zone) -> Responder:
    """Answers from a zone: unknown names are NXDOMAIN, known names without the type are an empty NOERROR."""

    def respond(query: dns.message.QueryMessage, transport: str) -> bytes | None:
        question = query.question[0]
        response = dns.message.make_response(query)
        types = records.get(question.name.to_text(omit_final_dot=True).lower())
        if types is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif texts := types.get(dns.rdatatype.to_text(question.rdtype)):
            response.answer.append(dns.rrset.from_text(question.name, 300, "IN", question.rdtype, *texts))
        return response.to_wire()

    return respond


def rcode_responder(rcode: dns.rcode.Rcode) -> Responder:
    """Answers every question with an empty response carrying `rcode`."""

    def respond(query: dns.message.QueryMessage, transport: str) -> bytes | None:
        response = dns.message.make_response(query)
        response.set_rcode(rcode)
        return response.to_wire()

    return respond


def failing_first(rcode: dns.rcode.Rcode, then: Responder) -> Responder:
    """Answers the first asking of each question with `rcode`, later ones with `then`."""
    seen: set[tuple[dns.name.Name, int]] = set()
    lock = threading.Lock()

    def respond(query: dns.message.QueryMessage, transport: str) -> bytes | None:
        key = (query.question[0].name, query.question[0].rdtype)
        with lock:
            first = key not in seen
            seen.add(key)
        return rcode_responder(rcode)(query, transport) if first else then(query, transport)

    return respond


def silent(query: dns.message.QueryMessage, transport: str) -> bytes | None:
    """Never answers."""
    return None


def wrong_id(query: dns.message.QueryMessage) -> bytes:
    """A well-formed answer to another query."""
    response = dns.message.make_response(query)
    response.id = (query.id + 1) % 65536
    return response.to_wire()


GARBAGE: list[Callable[[dns.message.QueryMessage], bytes]] = [
    lambda query: b"\xde\xad\xbe\xef garbage",
    lambda query: query.to_wire()[:2] + b"\x81\x80\x00\x01\x00\x01",  # a header promising records that never come
    wrong_id,
]


def provider(server: DnsServer, sleeps: Sleeps | None = None, **options: object) -> DnsProvider:
    """A provider asking only the test server, with small timeouts and recorded backoff."""
    settings: dict[str, object] = {"timeout": ANSWERED_TIMEOUT, "attempts": 2, **options}
    return DnsProvider([server.nameserver], sleep=sleeps or Sleeps(), **settings)  # type: ignore[arg-type]


EXAMPLE: Zone = {
    "example.com": {
        "MX": ["20 Mx2.Example.NET.", "10 mx1.example.net.", "20 alt.example.net."],
        "A": ["192.0.2.10"],
        "AAAA": ["2001:db8::10"],
        "TXT": ['"v=spf1 include:_spf.example.net " "ip4:192.0.2.0/24 -all"', '"google-site-verification=abc"'],
    },
    "_dmarc.example.com": {"TXT": ['"v=DMARC1; p=Quarantine; rua=mailto:dmarc@example.com"']},
    "nomail.example": {"MX": ["0 ."], "A": ["192.0.2.20"], "TXT": ['"v=spf1 -all"']},
    "_dmarc.nomail.example": {"TXT": ['"v=DMARC1; p=reject"']},
    "web.example": {"A": ["192.0.2.30"]},
}


def test_all_facts_of_a_domain(server: DnsServer) -> None:
    # Given a domain with three MX out of preference order, A, AAAA, an SPF split in two strings and DMARC
    server.respond = zone_responder(EXAMPLE)
    # When it is looked up
    facts = provider(server).lookup("example.com")
    # Then every column is right
    assert facts == DnsFacts(
        dns_exists=True,
        mx="mx1.example.net;alt.example.net;mx2.example.net",
        mx_null=False,
        has_a=True,
        has_aaaa=True,
        spf="v=spf1 include:_spf.example.net ip4:192.0.2.0/24 -all",
        dmarc="v=DMARC1; p=Quarantine; rua=mailto:dmarc@example.com",
        dmarc_policy="quarantine",
    )
    # And the five questions went out once each, as absolute names (no search list), over UDP with EDNS
    assert server.questions() == [
        ("_dmarc.example.com", "TXT"),
        ("example.com", "A"),
        ("example.com", "AAAA"),
        ("example.com", "MX"),
        ("example.com", "TXT"),
    ]
    assert len(server.asked) == 5
    assert {(a.transport, a.edns_payload) for a in server.asked} == {("udp", 1232)}


def test_nxdomain_is_an_answer_that_the_domain_does_not_exist(server: DnsServer) -> None:
    # Given a server that knows nothing of the domain
    server.respond = zone_responder(EXAMPLE)
    # When it is looked up
    facts = provider(server).lookup("missing.example")
    # Then it does not exist and every other column is empty
    assert facts == DnsFacts(dns_exists=False)
    assert facts.model_dump() == {
        "dns_exists": False,
        "mx": None,
        "mx_null": False,
        "has_a": False,
        "has_aaaa": False,
        "spf": None,
        "dmarc": None,
        "dmarc_policy": None,
    }


def test_null_mx_means_no_mail(server: DnsServer) -> None:
    # Given a domain publishing a null MX (RFC 7505) next to its A record, SPF and DMARC
    server.respond = zone_responder(EXAMPLE)
    # When it is looked up
    facts = provider(server).lookup("nomail.example")
    # Then it lists no mail host but says so with mx_null
    assert (facts.mx, facts.mx_null, facts.has_a) == (None, True, True)
    assert (facts.spf, facts.dmarc_policy) == ("v=spf1 -all", "reject")


def test_a_web_only_domain_has_no_mail_records(server: DnsServer) -> None:
    # Given a domain with only an A record (no MX, TXT or AAAA; its _dmarc name is NXDOMAIN)
    server.respond = zone_responder(EXAMPLE)
    # When it is looked up
    facts = provider(server).lookup("web.example")
    # Then it exists with an address and nothing else
    assert facts == DnsFacts(dns_exists=True, has_a=True)


@pytest.mark.parametrize(
    ("dmarc", "policy"),
    [
        ("v=DMARC1;p=none", "none"),
        ("v=DMARC1; p=monitor", None),
        ("v=DMARC1; rua=mailto:x@example.com", None),
    ],
)
def test_dmarc_policy_is_one_of_the_three_or_none(server: DnsServer, dmarc: str, policy: str | None) -> None:
    # Given a DMARC record with this policy tag, next to a TXT that only looks like DMARC
    server.respond = zone_responder(
        {"d.example": {"A": ["192.0.2.1"]}, "_dmarc.d.example": {"TXT": [f'"{dmarc}"', '"v=DMARC10; p=reject"']}}
    )
    # When the domain is looked up
    facts = provider(server).lookup("d.example")
    # Then the record is the real DMARC one and its policy is read
    assert (facts.dmarc, facts.dmarc_policy) == (dmarc, policy)


def test_timeout_is_retried_then_reported(server: DnsServer) -> None:
    # Given a server that never answers
    server.respond = silent
    sleeps = Sleeps()
    started = time.monotonic()
    # When a domain is looked up with two attempts
    with pytest.raises(ProviderError) as caught:
        provider(server, sleeps, attempts=2, timeout=QUICK_TIMEOUT).lookup("example.com")
    # Then each of the five questions was asked twice, with one backoff each, and it is a timeout
    assert caught.value.code == "dns_timeout"
    assert len(server.asked) == 10
    assert sleeps.calls == [0.2] * 5
    # And the questions waited concurrently, not one after another
    assert time.monotonic() - started < 2.0


def test_servfail_then_success_on_retry(server: DnsServer) -> None:
    # Given a server that fails each question once with SERVFAIL, then answers
    server.respond = failing_first(dns.rcode.SERVFAIL, zone_responder(EXAMPLE))
    sleeps = Sleeps()
    # When a domain is looked up
    facts = provider(server, sleeps).lookup("web.example")
    # Then the retries got the facts
    assert facts == DnsFacts(dns_exists=True, has_a=True)
    assert len(server.asked) == 10
    assert sleeps.calls == [0.2] * 5


def test_refused_always_is_a_dns_error_after_every_attempt(server: DnsServer) -> None:
    # Given a server that refuses everything
    server.respond = rcode_responder(dns.rcode.REFUSED)
    sleeps = Sleeps()
    # When a domain is looked up with three attempts
    with pytest.raises(ProviderError) as caught:
        provider(server, sleeps, attempts=3).lookup("example.com")
    # Then each question was asked three times with a doubling backoff, and it is a DNS error
    assert caught.value.code == "dns_error"
    assert len(server.asked) == 15
    assert sorted(sleeps.calls) == [0.2] * 5 + [0.4] * 5


@pytest.mark.parametrize(
    ("garbage", "code"),
    zip(GARBAGE, ["dns_bad_response", "dns_bad_response", "dns_error"], strict=True),
    ids=["junk", "short", "wrong-id"],
)
def test_malformed_answer_over_tcp_is_a_bad_response(
    server: DnsServer, garbage: Callable[[dns.message.QueryMessage], bytes], code: str
) -> None:
    # Given a server that says "truncated" over UDP, then answers garbage over TCP
    def respond(query: dns.message.QueryMessage, transport: str) -> bytes | None:
        if transport == "tcp":
            return garbage(query)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.TC
        return response.to_wire()

    server.respond = respond
    # When a domain is looked up
    with pytest.raises(ProviderError) as caught:
        provider(server, attempts=2).lookup("example.com")
    # Then no answer is accepted: a bad response, or for an answer to another question a broken connection (c-ares
    # drops the TCP connection every question shares); each of the five questions went over UDP in both attempts,
    # and then over TCP
    assert caught.value.code == code
    assert len([a for a in server.asked if a.transport == "udp"]) == 10
    assert sorted({a.transport for a in server.asked}) == ["tcp", "udp"]


@pytest.mark.parametrize(
    ("garbage", "code"),
    zip(GARBAGE, ["dns_bad_response", "dns_bad_response", "dns_timeout"], strict=True),
    ids=["junk", "short", "wrong-id"],
)
def test_malformed_answer_over_udp_is_refused_or_ignored_until_the_timeout(
    server: DnsServer, garbage: Callable[[dns.message.QueryMessage], bytes], code: str
) -> None:
    # Given a server that answers garbage over UDP
    server.respond = lambda query, transport: garbage(query)
    # When a domain is looked up with one attempt
    with pytest.raises(ProviderError) as caught:
        provider(server, attempts=1, timeout=QUICK_TIMEOUT).lookup("example.com")
    # Then a datagram that does not parse is a bad response; one for another question (another id) is dropped as
    # possibly spoofed and c-ares waits for a real answer: a timeout
    assert caught.value.code == code


def test_one_failing_domain_leaves_the_others_answered(server: DnsServer) -> None:
    # Given a server that refuses every question about one domain and answers the rest from the zone
    answer = zone_responder(EXAMPLE)
    refuse = rcode_responder(dns.rcode.REFUSED)
    server.respond = lambda query, transport: (
        refuse(query, transport) if query.question[0].name.to_text().endswith("broken.example.") else answer(query, "")
    )
    # When a batch of three is looked up
    answers = provider(server).lookup_many(["example.com", "broken.example", "web.example"])
    # Then the broken one is a per-domain failure and the others are answered, in order
    assert answers[1] == ProviderFailure("dns_error")
    assert isinstance(answers[0], DnsFacts)
    assert answers[0].mx == "mx1.example.net;alt.example.net;mx2.example.net"
    assert answers[2] == DnsFacts(dns_exists=True, has_a=True)


def test_an_unusable_name_is_a_logged_dns_error(server: DnsServer, caplog: pytest.LogCaptureFixture) -> None:
    # Given a name dnspython cannot even build (an empty label), next to a good one
    server.respond = zone_responder(EXAMPLE)
    # When both are looked up
    with caplog.at_level(logging.ERROR):
        answers = provider(server).lookup_many(["bad..example", "web.example"])
    # Then the bad one fails alone, logged, and nothing was sent for it
    assert answers == [ProviderFailure("dns_error"), DnsFacts(dns_exists=True, has_a=True)]
    assert "dns question crashed" in caplog.text
    assert {a.name for a in server.asked} == {"web.example", "_dmarc.web.example"}


def test_questions_run_concurrently(server: DnsServer) -> None:
    # Given a server that holds every answer back 100 ms, and 20 domains (100 questions)
    server.respond = zone_responder({f"d{i}.example": {"A": [f"192.0.2.{i}"]} for i in range(20)})
    server.delay = 0.1
    domains = [f"d{i}.example" for i in range(20)]
    started = time.monotonic()
    # When they are looked up with the default concurrency of 16
    answers = provider(server).lookup_many(domains)
    # Then all are answered, far sooner than one question at a time (10 s) would allow
    elapsed = time.monotonic() - started
    assert answers == [DnsFacts(dns_exists=True, has_a=True)] * 20
    assert elapsed < 2.0, elapsed


def test_rate_limit_spaces_the_questions(server: DnsServer) -> None:
    # Given a provider limited to one query per second, whose waits are recorded
    server.respond = zone_responder(EXAMPLE)
    sleeps = Sleeps()
    # When a domain (five questions) is looked up
    provider(server, sleeps, queries_per_second=1.0).lookup("web.example")
    # Then the four questions after the first waited for their one-second slots
    assert [round(s) for s in sorted(sleeps.calls)] == [1, 2, 3, 4]


def test_empty_batch_asks_nothing(server: DnsServer) -> None:
    # Given no domains, when a batch is looked up, then the answer is empty and the server was not asked
    assert provider(server).lookup_many([]) == []
    assert server.asked == []


@pytest.mark.parametrize(
    ("entry", "address", "port"),
    [
        ("192.0.2.53", "192.0.2.53", 53),
        ("192.0.2.53:5353", "192.0.2.53", 5353),
        ("2001:db8::53", "2001:db8::53", 53),
        ("[2001:db8::53]:5353", "2001:db8::53", 5353),
    ],
)
def test_nameserver_entries(entry: str, address: str, port: int) -> None:
    # Given a nameserver entry, when it is parsed, then address and port are right (53 by default)
    nameserver = parse_nameserver(entry)
    assert (nameserver.address, nameserver.port) == (address, port)


@pytest.mark.parametrize("entry", ["dns.example.net", "192.0.2.53:dns", ""])
def test_nameserver_entries_that_are_not_addresses_are_refused(entry: str) -> None:
    # Given an entry that is not an address (a host name would need DNS to find DNS), then it is refused
    with pytest.raises(ValueError):
        parse_nameserver(entry)
