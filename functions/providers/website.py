"""Company website: the home page's title, description and social profile links; an online provider.

`WebsiteProvider(timeout=5.0, max_bytes=512_000, max_redirects=3, allow_private=False, concurrency=8,
scheme="https", attempts=3, backoff=0.5, max_retry_after=10.0, sleep=time.sleep, resolve=resolve_public)` fetches
`{scheme}://{domain}/` for each domain and answers `WebsiteFacts` or a `ProviderFailure`.

The domain comes from a user's file, so the fetch must not become a way into our network (SSRF):

- every hop (the first request and each redirect) is resolved once, checked by `functions.netguard` and connected
  to that very address, so DNS rebinding cannot swap the target between check and connect;
- redirects are followed here, not by urllib, so each one is checked; at most `max_redirects`, http(s) only;
- `allow_private` admits loopback and private networks (local runs and tests); link-local addresses (cloud
  metadata at 169.254.169.254, fe80::/10) are refused whatever it says.

Limits: the connect and each read are bounded by `timeout`; the whole fetch of one attempt (name resolution, all
hops, the body) by twice that. At most `max_bytes` of the body is read; a longer page is parsed from that prefix.
Only text/html (and XHTML) bodies are parsed; other content types give the URL and status only.

Failures: `website_blocked` (a forbidden address or a non-http(s) redirect), `website_unreachable` (no such name,
connection refused or reset, TLS failure, a value that is not a host name), `website_timeout`,
`website_too_many_redirects`, `website_error` (a final status of 400 or more). Timeouts, resets, 429 and 5xx are
retried, up to `attempts` in all, with exponential backoff or the server's Retry-After (capped at `max_retry_after`).
A bare domain that is unreachable is tried once more as `www.<domain>` (many sites are served only there).
"""

from __future__ import annotations

import codecs
import http.client
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from html.parser import HTMLParser
from urllib.parse import quote, urljoin, urlsplit

import idna

from functions.enrich._common import ProviderFailure
from functions.enrich._hosts import is_ip_address
from functions.enrich.facts import WebsiteFacts
from functions.netguard import BlockedTargetError, PinnedHTTPConnection, PinnedHTTPSConnection, resolve_public
from functions.providers.http_client import PROVIDER_ERROR, USER_AGENT, ProviderError, retry_after_seconds

logger = logging.getLogger(__name__)

WEBSITE_BLOCKED = "website_blocked"
WEBSITE_UNREACHABLE = "website_unreachable"
WEBSITE_TIMEOUT = "website_timeout"
WEBSITE_TOO_MANY_REDIRECTS = "website_too_many_redirects"
WEBSITE_ERROR = "website_error"

MAX_TITLE = 300
MAX_DESCRIPTION = 500
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_CHUNK = 16_384
_HEADERS = {
    # Some sites refuse clients that do not look like a browser at all; say who we are inside a browser-like UA.
    "User-Agent": f"Mozilla/5.0 (compatible; {USER_AGENT})",
    "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5",
    "Accept-Language": "en;q=0.9,*;q=0.5",
}
# Path characters that may stay as they are in a request target; everything else is percent-encoded.
_SAFE_TARGET = "/%:@!$&'()*+,;=-._~?"
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9._:-]+)""", re.IGNORECASE)

SOCIAL_NETWORKS: dict[str, tuple[str, ...]] = {
    "linkedin": ("linkedin.com",),
    "twitter": ("twitter.com", "x.com"),
    "facebook": ("facebook.com",),
    "instagram": ("instagram.com",),
    "youtube": ("youtube.com", "youtu.be"),
    "github": ("github.com",),
}
# "Share this page" buttons point at the network, not at the company's profile.
_SHARE_PATHS = frozenset({"sharer", "sharer.php", "share", "share.php", "intent", "sharearticle", "sharing", "dialog"})

Resolver = Callable[[str, int, bool], str]


def social_network(href: str) -> tuple[str, str] | None:
    """(network, link) when an href is an absolute link to a profile on a known social network."""
    link = href.strip()
    if link.startswith("//"):
        link = "https:" + link
    try:
        parts = urlsplit(link)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    if parts.path.strip("/").split("/")[0].lower() in _SHARE_PATHS:
        return None
    for network, domains in SOCIAL_NETWORKS.items():
        if any(host == domain or host.endswith("." + domain) for domain in domains):
            return network, link
    return None


def _clean(text: str | None, limit: int) -> str | None:
    collapsed = " ".join((text or "").split())
    return collapsed[:limit] or None


class _PageParser(HTMLParser):
    """Collects the first title, the descriptions and the first link per social network of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: list[str] = []
        self.description: str | None = None
        self.og_description: str | None = None
        self.links: dict[str, str] = {}
        self._in_title = False
        self._title_seen = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Note titles, meta descriptions and social links."""
        values = {name: value or "" for name, value in attrs}
        if tag == "title" and not self._title_seen:
            self._in_title = True
        elif tag == "meta":
            self._meta(values)
        elif tag == "a" and values.get("href"):
            found = social_network(values["href"])
            if found is not None:
                self.links.setdefault(*found)

    def handle_endtag(self, tag: str) -> None:
        """End the title."""
        if tag == "title" and self._in_title:
            self._in_title = False
            self._title_seen = True

    def handle_data(self, data: str) -> None:
        """Keep the title's text."""
        if self._in_title:
            self.title.append(data)

    def _meta(self, values: dict[str, str]) -> None:
        content = values.get("content", "").strip()
        if not content:
            return
        name = values.get("name", "").strip().lower()
        prop = values.get("property", "").strip().lower()
        if name == "description" and self.description is None:
            self.description = content
        elif "og:description" in (name, prop) and self.og_description is None:
            self.og_description = content


def decode_html(body: bytes, header_charset: str | None) -> str:
    """The text of an HTML body: the Content-Type charset, else a meta charset, else UTF-8 (bad bytes replaced)."""
    found = _META_CHARSET.search(body[:4096])
    for charset in (header_charset, found.group(1).decode("ascii") if found else None):
        if charset:
            try:
                return body.decode(codecs.lookup(charset).name, errors="replace")
            except LookupError:
                continue
    return body.decode("utf-8", errors="replace")


def parse_page(url: str, status: int, html: str) -> WebsiteFacts:
    """The facts of one fetched HTML page."""
    parser = _PageParser()
    try:
        parser.feed(html)
        parser.close()
    except AssertionError:
        # _markupbase asserts on some malformed declarations; what was read up to there still counts.
        logger.info("html parsing stopped early", extra={"url": url})
    links = parser.links
    return WebsiteFacts(
        website_url=url,
        website_status=status,
        website_title=_clean("".join(parser.title), MAX_TITLE),
        website_description=_clean(parser.description or parser.og_description, MAX_DESCRIPTION),
        **{network: links.get(network) for network in SOCIAL_NETWORKS},
    )


class _Transient(Exception):
    """A failure of one attempt that may pass: the error to report if it was the last, and the server's wait hint."""

    def __init__(self, error: ProviderError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class _Deadline:
    """The time limit of one fetch: steps get at most what is left, and a timer cuts the connection still open then.

    Socket timeouts bound each read, not their sum; a server trickling one header byte at a time would otherwise
    hold a worker for as long as it likes.
    """

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def left(self, step: float) -> float:
        """The timeout for the next step: `step`, or less when the deadline is nearer; raises when it has passed."""
        remaining = self._end - time.monotonic()
        if remaining <= 0 or self.expired:
            raise _Transient(ProviderError(WEBSITE_TIMEOUT, "the fetch took too long"))
        return min(step, remaining)

    def check(self) -> None:
        """Raise the timeout when the deadline has passed."""
        self.left(0.0)

    def watch(self, sock: socket.socket | None) -> None:
        """The connection to cut when the deadline passes."""
        with self._lock:
            self._sock = sock
        if self.expired:
            self._expire()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            if self._sock is not None:
                try:
                    # The plain socket's shutdown, also for TLS: it wakes a blocked read without touching SSL state.
                    socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
                except OSError:
                    pass

    def cancel(self) -> None:
        """Stop the timer (the fetch is over)."""
        self._timer.cancel()


def _within(seconds: float, call: Callable[[], str]) -> str:
    # getaddrinfo has no timeout of its own; a hung resolver costs a daemon thread, never the row's deadline.
    future: Future[str] = Future()

    def run() -> None:
        try:
            future.set_result(call())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True, name="website-resolve").start()
    try:
        return future.result(timeout=seconds)
    except FutureTimeout as exc:
        raise _Transient(ProviderError(WEBSITE_TIMEOUT, "name resolution timed out")) from exc


def _failure(exc: Exception, expired: bool) -> Exception:
    """What a network error during a fetch means for the row."""
    if expired or isinstance(exc, TimeoutError):
        return _Transient(ProviderError(WEBSITE_TIMEOUT, type(exc).__name__))
    if isinstance(exc, ConnectionResetError | BrokenPipeError | http.client.IncompleteRead):
        return _Transient(ProviderError(WEBSITE_UNREACHABLE, type(exc).__name__))
    # DNS failure, connection refused, TLS failure, a malformed answer: asking again will not help.
    return ProviderError(WEBSITE_UNREACHABLE, f"{type(exc).__name__}: {exc}")


def _target(url: str) -> str:
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return quote(path, safe=_SAFE_TARGET)


class WebsiteProvider:
    """Fetches a domain's home page with SSRF checks on every hop, strict time limits and a few retries."""

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        max_bytes: int = 512_000,
        max_redirects: int = 3,
        allow_private: bool = False,
        concurrency: int = 8,
        scheme: str = "https",
        attempts: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        resolve: Resolver = resolve_public,
    ) -> None:
        if scheme not in ("http", "https"):
            raise ValueError("scheme must be http or https")
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._max_redirects = max_redirects
        self._allow_private = allow_private
        self._concurrency = concurrency
        self._scheme = scheme
        self._attempts = attempts
        self._backoff = backoff
        self._max_retry_after = max_retry_after
        self._sleep = sleep
        self._resolve = resolve

    def lookup_many(self, domains: Sequence[str]) -> list[WebsiteFacts | ProviderFailure]:
        """One answer per domain, in order, at most `concurrency` fetches at once; failures are answers."""

        def one(domain: str) -> WebsiteFacts | ProviderFailure:
            try:
                return self.lookup(domain)
            except ProviderError as exc:
                logger.info("website lookup failed: %s", exc)
                return ProviderFailure(exc.code)
            except Exception:
                logger.exception("website lookup crashed")
                return ProviderFailure(PROVIDER_ERROR)

        if not domains:
            return []
        workers = max(1, min(self._concurrency, len(domains)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="website") as pool:
            return list(pool.map(one, domains))

    def lookup(self, domain: str) -> WebsiteFacts:
        """The facts of one domain's home page; raises ProviderError when it cannot be had.

        A bare domain that cannot be reached (no address, connection refused) is tried once more as `www.<domain>`:
        plenty of companies serve their site only there.
        """
        try:
            return self._lookup_url(self.home_url(domain))
        except ProviderError as exc:
            host = urlsplit("//" + domain.strip()).hostname or ""
            if exc.code != WEBSITE_UNREACHABLE or not host or host.startswith("www.") or is_ip_address(host):
                raise
            try:
                return self._lookup_url(self.home_url("www." + domain.strip()))
            except ProviderError:
                raise exc from None

    def _lookup_url(self, url: str) -> WebsiteFacts:
        for attempt in range(1, self._attempts + 1):
            try:
                return self._fetch(url)
            except _Transient as retry:
                if attempt >= self._attempts:
                    raise retry.error from retry
                if retry.retry_after is not None:
                    delay = min(retry.retry_after, self._max_retry_after)
                else:
                    delay = self._backoff * 2 ** (attempt - 1)
                logger.info("website: retrying after %s (%.2fs)", retry.error.code, delay)
                self._sleep(delay)
        raise ProviderError(WEBSITE_ERROR, "no attempts configured")

    def home_url(self, domain: str) -> str:
        """`{scheme}://{host[:port]}/` for a domain (Unicode names in their IDNA form)."""
        try:
            parts = urlsplit("//" + domain.strip())
            host, port = parts.hostname, parts.port
            if not host:
                raise ValueError("no host name")
            if not host.isascii():
                host = idna.encode(host, uts46=True).decode("ascii")
        except (ValueError, idna.IDNAError, UnicodeError) as exc:
            raise ProviderError(WEBSITE_UNREACHABLE, f"not a host name: {exc}") from exc
        netloc = f"[{host}]" if ":" in host else host
        return f"{self._scheme}://{netloc}{f':{port}' if port else ''}/"

    def _fetch(self, url: str) -> WebsiteFacts:
        deadline = _Deadline(2 * self._timeout)
        try:
            for hop in range(self._max_redirects + 1):
                conn = self._connect(url, deadline)
                # http.client drops conn.sock once an answer says the connection closes; the response reads on.
                sock: socket.socket = conn.sock
                response: http.client.HTTPResponse | None = None
                try:
                    response = self._request(conn, sock, url, deadline)
                    location = self._next_url(url, response)
                    if location is None:
                        return self._page(sock, response, url, deadline)
                finally:
                    if response is not None:
                        response.close()
                    conn.close()
                if hop == self._max_redirects:
                    break
                url = location
            raise ProviderError(WEBSITE_TOO_MANY_REDIRECTS, f"more than {self._max_redirects} redirects")
        finally:
            deadline.cancel()

    def _connect(self, url: str, deadline: _Deadline) -> http.client.HTTPConnection:
        parts = urlsplit(url)
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host:
            raise ProviderError(WEBSITE_BLOCKED, f"not an http(s) URL: {url[:200]}")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            address = _within(deadline.left(self._timeout), lambda: self._resolve(host, port, self._allow_private))
        except BlockedTargetError as exc:
            raise ProviderError(WEBSITE_BLOCKED, str(exc)) from exc
        except (OSError, UnicodeError, ValueError) as exc:
            raise _failure(exc, deadline.expired) from exc
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = PinnedHTTPSConnection(host, address, port, deadline.left(self._timeout))
        else:
            conn = PinnedHTTPConnection(host, address, port, deadline.left(self._timeout))
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            raise _failure(exc, deadline.expired) from exc
        deadline.watch(conn.sock)
        return conn

    def _request(
        self, conn: http.client.HTTPConnection, sock: socket.socket, url: str, deadline: _Deadline
    ) -> http.client.HTTPResponse:
        try:
            sock.settimeout(deadline.left(self._timeout))
            conn.request("GET", _target(url), headers=_HEADERS)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            raise _failure(exc, deadline.expired) from exc
        # A connection cut at the deadline can look like a complete (if odd) answer; it is a timeout.
        deadline.check()
        return response

    def _next_url(self, url: str, response: http.client.HTTPResponse) -> str | None:
        """The URL a redirect points at; None when the answer is the page; raises for statuses that fail the row."""
        location = response.getheader("Location")
        if response.status in _REDIRECTS and location:
            target = urljoin(url, location.strip())
            if urlsplit(target).scheme not in ("http", "https"):
                raise ProviderError(WEBSITE_BLOCKED, f"redirect to a non-http(s) URL: {target[:200]}")
            return target.split("#", 1)[0]
        if response.status == 429 or response.status >= 500:
            retry_after = retry_after_seconds(response.getheader("Retry-After"))
            raise _Transient(ProviderError(WEBSITE_ERROR, str(response.status)), retry_after)
        if response.status >= 400:
            raise ProviderError(WEBSITE_ERROR, str(response.status))
        return None

    def _page(
        self, sock: socket.socket, response: http.client.HTTPResponse, url: str, deadline: _Deadline
    ) -> WebsiteFacts:
        if response.headers.get_content_type() not in _HTML_TYPES:
            return parse_page(url, response.status, "")
        chunks: list[bytes] = []
        size = 0
        try:
            while size < self._max_bytes:
                sock.settimeout(deadline.left(self._timeout))
                chunk = response.read1(min(_CHUNK, self._max_bytes - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except (OSError, http.client.HTTPException) as exc:
            # A page cut short still has a usable beginning; anything else is the fetch failing.
            if deadline.expired or not chunks or not isinstance(exc, http.client.IncompleteRead):
                raise _failure(exc, deadline.expired) from exc
        deadline.check()
        html = decode_html(b"".join(chunks), response.headers.get_content_charset())
        return parse_page(url, response.status, html)
