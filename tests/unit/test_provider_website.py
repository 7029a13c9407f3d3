"""Company websites: home page facts, manual redirects with SSRF checks on every hop, time limits, retries."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from functions.enrich._common import ProviderFailure
from functions.providers.website import WebsiteFacts, WebsiteProvider
from tests.unit.test_provider_http import Reply, ScriptedServer, Seen, Sleeps, scripted_server

TIMEOUT = 0.2
HTML = {"Content-Type": "text/html; charset=utf-8"}

HOME = b"""<!doctype html>
<html lang="en"><head>
  <meta charset="utf-8">
  <title>
     Acme Corp &amp; Sons |
     Widgets since 1901
  </title>
  <meta name="description" content="  Acme makes   widgets. ">
  <meta property="og:description" content="The og text">
</head><body>
  <a href="/about">About</a>
  <a href="https://www.facebook.com/sharer/sharer.php?u=https://acme.example">Share</a>
  <a href="https://twitter.com/intent/tweet?text=hi">Tweet</a>
  <a href="https://www.linkedin.com/company/acme">LinkedIn</a>
  <a href="https://www.linkedin.com/company/acme-jobs">Jobs</a>
  <a href="https://x.com/acme">X</a>
  <a href=" https://www.facebook.com/acmecorp ">Facebook</a>
  <a href="//instagram.com/acme">Instagram</a>
  <a href="https://www.youtube.com/@acme">YouTube</a>
  <a href="https://github.com/acme">GitHub</a>
  <a href="https://notgithub.com/acme">Not GitHub</a>
</body></html>"""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    """The scripted server for this test."""
    yield from scripted_server(monkeypatch)


def domain_of(server: ScriptedServer) -> str:
    """The test server as a domain value (host:port)."""
    return server.url.removeprefix("http://")


def provider(sleeps: Sleeps | None = None, **options: Any) -> WebsiteProvider:
    """A provider for plain HTTP on 127.0.0.1 with tiny timeouts and recorded (not real) backoff sleeps."""
    settings: dict[str, Any] = {"timeout": TIMEOUT, "scheme": "http", "allow_private": True, "backoff": 0.1, **options}
    return WebsiteProvider(sleep=sleeps or Sleeps(), **settings)


def only(answers: list[WebsiteFacts | ProviderFailure]) -> WebsiteFacts:
    """The single answer, which must be facts."""
    [answer] = answers
    assert isinstance(answer, WebsiteFacts), answer
    return answer


def test_home_page_facts(server: ScriptedServer) -> None:
    # Given a home page with a title, descriptions, share buttons and profile links
    server.script(Reply(body=HOME, headers=HTML))
    # When the domain is looked up
    facts = only(provider().lookup_many([domain_of(server)]))
    # Then the title and description are cleaned and the first profile link per network is kept
    assert facts == WebsiteFacts(
        website_url=f"{server.url}/",
        website_status=200,
        website_title="Acme Corp & Sons | Widgets since 1901",
        website_description="Acme makes widgets.",
        linkedin="https://www.linkedin.com/company/acme",
        twitter="https://x.com/acme",
        facebook="https://www.facebook.com/acmecorp",
        instagram="https://instagram.com/acme",
        youtube="https://www.youtube.com/@acme",
        github="https://github.com/acme",
    )
    # And the home page was asked for, as HTML
    assert server.requests[0].path == "/"
    assert "text/html" in server.requests[0].headers["accept"]


def test_og_description_when_there_is_no_meta_description(server: ScriptedServer) -> None:
    # Given a page with only an Open Graph description and a very long title
    title = "word " * 200
    body = f'<title>{title}</title><meta content="Shared text" property="og:description">'.encode()
    server.script(Reply(body=body, headers=HTML))
    # When it is looked up
    facts = only(provider().lookup_many([domain_of(server)]))
    # Then the og description is used and the title is cut at 300 characters
    assert facts.website_description == "Shared text"
    assert facts.website_title is not None and len(facts.website_title) == 300


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html; charset=iso-8859-1", "<title>Caf\u00e9 M\u00fcller</title>".encode("latin-1")),
        ("text/html", '<meta charset="windows-1252"><title>Caf\u00e9 M\u00fcller</title>'.encode("cp1252")),
        ("text/html", "<title>Caf\u00e9 M\u00fcller</title>".encode()),
    ],
    ids=["header-charset", "meta-charset", "utf8-default"],
)
def test_charset_from_header_then_meta_then_utf8(server: ScriptedServer, content_type: str, body: bytes) -> None:
    # Given a page encoded as its header or its meta tag says, or in UTF-8 when neither says
    server.script(Reply(body=body, headers={"Content-Type": content_type}))
    # When it is looked up, then the title is decoded correctly
    assert only(provider().lookup_many([domain_of(server)])).website_title == "Caf\u00e9 M\u00fcller"


def test_redirect_chain_is_followed_to_the_final_url(server: ScriptedServer) -> None:
    # Given a home page that moved twice, once absolutely and once relatively
    def respond(seen: Seen) -> Reply:
        if seen.path == "/":
            return Reply(status=301, headers={"Location": f"{server.url}/en/"}, body=b"")
        if seen.path == "/en/":
            return Reply(status=302, headers={"Location": "home?from=redirect#top"}, body=b"")
        return Reply(body=HOME, headers=HTML)

    server.respond = respond
    # When the domain is looked up with up to three redirects
    facts = only(provider(max_redirects=3).lookup_many([domain_of(server)]))
    # Then the final page is described under its own URL, without the fragment
    assert facts.website_url == f"{server.url}/en/home?from=redirect"
    assert facts.website_title == "Acme Corp & Sons | Widgets since 1901"
    assert [s.path for s in server.requests] == ["/", "/en/", "/en/home"]
    # And every hop named the original host
    assert {s.headers["host"] for s in server.requests} == {domain_of(server)}


def test_too_many_redirects(server: ScriptedServer) -> None:
    # Given a site that redirects forever
    server.respond = lambda seen: Reply(status=302, headers={"Location": f"/loop{len(server.requests)}"}, body=b"")
    # When it is looked up with at most two redirects
    answers = provider(max_redirects=2).lookup_many([domain_of(server)])
    # Then it gives up after the first request and two redirects, without retrying
    assert answers == [ProviderFailure("website_too_many_redirects")]
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fe80::1]/",
        "http://[::ffff:169.254.169.254]/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
    ],
    ids=["metadata", "ipv6-link-local", "mapped-metadata", "file", "gopher"],
)
def test_redirect_to_metadata_or_a_foreign_scheme_is_blocked(server: ScriptedServer, location: str) -> None:
    # Given a site on loopback (allowed here, as in local runs) that redirects to the metadata service or off http
    server.script(Reply(status=302, headers={"Location": location}, body=b""))
    # When it is looked up with private targets allowed
    answers = provider(allow_private=True).lookup_many([domain_of(server)])
    # Then the redirect is refused: link-local is never allowed, and only http(s) is followed
    assert answers == [ProviderFailure("website_blocked")]
    assert len(server.requests) == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_is_refused_in_production(server: ScriptedServer, host: str) -> None:
    # Given a site on loopback, by address or by name
    port = server.url.rsplit(":", 1)[1]
    # When it is looked up with private targets not allowed
    answers = provider(allow_private=False).lookup_many([f"{host}:{port}"])
    # Then it is blocked before any connection is made
    assert answers == [ProviderFailure("website_blocked")]
    assert server.requests == []


def test_connection_goes_to_the_resolved_address_under_the_original_name(server: ScriptedServer) -> None:
    # Given a resolver that maps a name real DNS does not know to the test server (what a rebinding DNS would do)
    asked: list[tuple[str, int, bool]] = []

    def resolve(host: str, port: int, allow_private: bool) -> str:
        asked.append((host, port, allow_private))
        return "127.0.0.1"

    server.script(Reply(body=HOME, headers=HTML))
    port = int(server.url.rsplit(":", 1)[1])
    # When that name is looked up
    facts = only(provider(resolve=resolve).lookup_many([f"www.acme.test:{port}"]))
    # Then the name was resolved once, the connection went to that address, and the server saw the name
    assert asked == [("www.acme.test", port, True)]
    assert facts.website_url == f"http://www.acme.test:{port}/"
    assert server.requests[0].headers["host"] == f"www.acme.test:{port}"


def test_internationalized_domain_is_fetched_by_its_idna_name(server: ScriptedServer) -> None:
    # Given a resolver that records the names it is asked for
    asked: list[str] = []

    def resolve(host: str, port: int, allow_private: bool) -> str:
        asked.append(host)
        return "127.0.0.1"

    server.script(Reply(body=b"<title>M</title>", headers=HTML))
    port = server.url.rsplit(":", 1)[1]
    # When a Unicode domain is looked up, then it is resolved and named in its IDNA form
    facts = only(provider(resolve=resolve).lookup_many([f"M\u00fcnchen.de:{port}"]))
    assert asked == ["xn--mnchen-3ya.de"]
    assert server.requests[0].headers["host"] == f"xn--mnchen-3ya.de:{port}"
    assert facts.website_title == "M"


def test_slow_answer_is_a_timeout_after_retries(server: ScriptedServer) -> None:
    # Given a server that holds its answer far longer than the timeout
    server.script(Reply(delay=5.0, body=HOME, headers=HTML))
    sleeps = Sleeps()
    # When the domain is looked up with two attempts
    started = time.monotonic()
    answers = provider(sleeps, attempts=2).lookup_many([domain_of(server)])
    # Then both attempts timed out quickly, with one backoff between them
    assert answers == [ProviderFailure("website_timeout")]
    assert len(server.requests) == 2
    assert sleeps.calls == [0.1]
    assert time.monotonic() - started < 2.0


class RawServer:
    """A TCP server on 127.0.0.1 answering each request with raw bytes, then trickling more until the client leaves."""

    def __init__(self, answer: bytes, trickle: bytes = b"") -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._answer = answer
        self._trickle = trickle
        self._stop = threading.Event()
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self._listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            with conn:
                self.connections += 1
                conn.recv(65536)
                try:
                    conn.sendall(self._answer)
                    while self._trickle and not self._stop.wait(TIMEOUT / 4):
                        conn.sendall(self._trickle)
                except OSError:
                    pass  # the client hung up, as it should

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()


def test_a_trickling_server_is_cut_at_the_fetch_deadline() -> None:
    # Given a server that never stops sending header bytes, each well within the read timeout
    with RawServer(b"HTTP/1.1 200 OK\r\nX-Slow: ", trickle=b"a") as trickler:
        started = time.monotonic()
        # When it is looked up with one attempt
        answers = provider(attempts=1).lookup_many([f"127.0.0.1:{trickler.port}"])
        elapsed = time.monotonic() - started
    # Then the whole-fetch deadline (twice the timeout) ends it as a timeout
    assert answers == [ProviderFailure("website_timeout")]
    assert 2 * TIMEOUT <= elapsed < 2 * TIMEOUT + 1.0


def test_hung_name_resolution_is_a_timeout() -> None:
    # Given a resolver that hangs
    release = threading.Event()

    def resolve(host: str, port: int, allow_private: bool) -> str:
        release.wait(5.0)
        return "127.0.0.1"

    try:
        # When a domain is looked up with one attempt
        answers = provider(attempts=1, resolve=resolve).lookup_many(["slow-dns.example"])
    finally:
        release.set()
    # Then the row is a timeout, not a worker stuck for the resolver's own timeout
    assert answers == [ProviderFailure("website_timeout")]


def test_5xx_then_success(server: ScriptedServer) -> None:
    # Given a site that fails once with 503, then answers
    server.script(Reply(status=503, body=b"busy", headers=HTML), Reply(body=HOME, headers=HTML))
    sleeps = Sleeps()
    # When it is looked up
    facts = only(provider(sleeps).lookup_many([domain_of(server)]))
    # Then it backed off once and got the page
    assert sleeps.calls == [0.1]
    assert facts.website_status == 200
    assert facts.github == "https://github.com/acme"


def test_429_waits_for_retry_after_capped(server: ScriptedServer) -> None:
    # Given a site that rate limits with a short, then an absurd Retry-After, then answers
    server.script(
        Reply(status=429, headers={"Retry-After": "2"}, body=b""),
        Reply(status=429, headers={"Retry-After": "3600"}, body=b""),
        Reply(body=HOME, headers=HTML),
    )
    sleeps = Sleeps()
    # When it is looked up with three attempts and a 5 s cap
    facts = only(provider(sleeps, attempts=3, max_retry_after=5.0).lookup_many([domain_of(server)]))
    # Then it waited what the site asked, at most the cap, and got the page
    assert sleeps.calls == [2.0, 5.0]
    assert facts.website_title == "Acme Corp & Sons | Widgets since 1901"


def test_server_errors_to_the_end_are_website_error(server: ScriptedServer) -> None:
    # Given a site that keeps failing
    server.script(Reply(status=502, body=b"bad gateway", headers=HTML))
    # When it is looked up with two attempts, then the row is a website error after both
    assert provider(attempts=2).lookup_many([domain_of(server)]) == [ProviderFailure("website_error")]
    assert len(server.requests) == 2


def test_client_error_status_is_website_error_without_retry(server: ScriptedServer) -> None:
    # Given a site answering 404 for its home page
    server.script(Reply(status=404, body=b"<title>Not found</title>", headers=HTML))
    # When it is looked up, then the row is a website error, asked once
    assert provider().lookup_many([domain_of(server)]) == [ProviderFailure("website_error")]
    assert len(server.requests) == 1


def test_body_larger_than_max_bytes_is_cut_and_parsed(server: ScriptedServer) -> None:
    # Given a page whose profile link comes after a lot of filler
    body = b"<title>Big page</title>" + b"<p>filler</p>" * 10_000 + b'<a href="https://github.com/big">gh</a>'
    server.script(Reply(body=body, headers=HTML))
    # When it is looked up reading at most 2000 bytes
    facts = only(provider(max_bytes=2000).lookup_many([domain_of(server)]))
    # Then the beginning was parsed and what lies beyond the limit was not read
    assert facts.website_title == "Big page"
    assert facts.github is None


def test_a_page_cut_short_by_the_server_is_parsed() -> None:
    # Given a server that announces more bytes than it sends, then closes
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 50000\r\n\r\n"
    with RawServer(head + b"<title>Half a page</title>") as cut:
        # When it is looked up
        answers = provider().lookup_many([f"127.0.0.1:{cut.port}"])
    # Then what arrived is parsed
    assert only(answers).website_title == "Half a page"


def test_non_html_content_is_not_parsed(server: ScriptedServer) -> None:
    # Given a home page that is a PDF containing something that looks like a title
    server.script(Reply(body=b"%PDF-1.7 <title>not html</title>", headers={"Content-Type": "application/pdf"}))
    # When it is looked up
    facts = only(provider().lookup_many([domain_of(server)]))
    # Then only the URL and status are reported
    assert facts.website_url == f"{server.url}/"
    assert facts.website_status == 200
    assert facts.website_title is None and facts.github is None


def test_refused_connection_is_unreachable() -> None:
    # Given a port nobody listens on
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    # When it is looked up
    answers = provider().lookup_many([f"127.0.0.1:{port}"])
    # Then the row is unreachable
    assert answers == [ProviderFailure("website_unreachable")]


def test_connection_closed_without_an_answer_is_retried_then_unreachable() -> None:
    # Given a server that hangs up on every request without answering
    sleeps = Sleeps()
    with RawServer(b"") as silent:
        # When it is looked up with two attempts
        answers = provider(sleeps, attempts=2).lookup_many([f"127.0.0.1:{silent.port}"])
    # Then it was asked twice, with a backoff between, and the row is unreachable
    assert answers == [ProviderFailure("website_unreachable")]
    assert silent.connections == 2
    assert sleeps.calls == [0.1]


def test_tls_failure_is_unreachable_without_retry(server: ScriptedServer) -> None:
    # Given a server that does not speak TLS
    sleeps = Sleeps()
    # When it is looked up over https (with a timeout no loaded machine reaches: the refusal comes at once, and a
    # handshake that timed out would be a retried timeout, not the failure under test; CI saw that under load)
    answers = provider(sleeps, scheme="https", timeout=5.0).lookup_many([domain_of(server)])
    # Then the handshake failure makes the row unreachable, and it was not retried
    assert answers == [ProviderFailure("website_unreachable")]
    assert sleeps.calls == []


def test_only_http_and_https_schemes_are_accepted() -> None:
    # Given a scheme other than http(s), when a provider is built, then it is refused
    with pytest.raises(ValueError):
        WebsiteProvider(scheme="ftp")


def test_each_domain_gets_its_own_answer_in_order(server: ScriptedServer) -> None:
    # Given a server that is up, and a name that is not a host
    server.script(Reply(body=HOME, headers=HTML))
    # When a batch with both is looked up
    answers = provider().lookup_many(["not a host/", domain_of(server), "[::1"])
    # Then the good one has facts and the others fail on their own
    assert [type(a).__name__ for a in answers] == ["ProviderFailure", "WebsiteFacts", "ProviderFailure"]
    assert answers[0] == ProviderFailure("website_unreachable")
    assert provider().lookup_many([]) == []


def test_a_bare_domain_without_a_site_is_tried_as_www(server: ScriptedServer) -> None:
    # Given a name whose bare form has no address, while www. resolves to the test server
    asked: list[str] = []

    def resolve(host: str, port: int, allow_private: bool) -> str:
        asked.append(host)
        if not host.startswith("www."):
            raise socket.gaierror("no address")
        return "127.0.0.1"

    server.script(Reply(body=HOME, headers=HTML))
    port = int(server.url.rsplit(":", 1)[1])
    # When the bare domain is looked up
    facts = only(provider(resolve=resolve).lookup_many([f"acme.test:{port}"]))
    # Then the site came from www., after the bare name failed
    assert asked == ["acme.test", "www.acme.test"]
    assert facts.website_url == f"http://www.acme.test:{port}/"
    assert facts.website_title == "Acme Corp & Sons | Widgets since 1901"


def test_when_www_fails_too_the_bare_domains_failure_is_reported() -> None:
    # Given a name that resolves neither bare nor with www.
    def resolve(host: str, port: int, allow_private: bool) -> str:
        raise socket.gaierror("no address")

    # When it is looked up
    [answer] = provider(resolve=resolve).lookup_many(["gone.test"])
    # Then it is unreachable (reported once, for the bare domain)
    assert answer == ProviderFailure("website_unreachable")
