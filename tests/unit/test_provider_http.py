"""The shared provider HTTP client against a scripted server on 127.0.0.1; also home of that server for the others."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from functions.enrich._common import ProviderFailure
from functions.providers.http_client import HttpPolicy, JsonClient, ProviderError, RateLimiter

CLIENT_TIMEOUT = 0.2


@dataclass(frozen=True)
class Reply:
    """One scripted answer; a non-bytes body is sent as JSON; `delay` holds the answer back (for timeouts)."""

    status: int = 200
    body: Any = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    """A request the server received."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class ScriptedServer:
    """An HTTP server on 127.0.0.1 answering from a script and recording what it was asked."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.respond: Callable[[Seen], Reply] = lambda seen: Reply()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        # A short poll interval keeps shutdown (and so each test's teardown) quick.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *replies: Reply) -> None:
        """Answer requests with these replies in order; the last one repeats."""
        queue = list(replies)

        def next_reply(seen: Seen) -> Reply:
            return queue.pop(0) if len(queue) > 1 else queue[0]

        self.respond = next_reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                seen = Seen(parts.path, parse_qs(parts.query), {k.lower(): v for k, v in self.headers.items()})
                with server._lock:
                    server.requests.append(seen)
                    reply = server.respond(seen)
                if reply.delay:
                    server.release.wait(reply.delay)
                body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def scripted_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    """A scripted HTTP server on 127.0.0.1, shut down (and its held answers released) after the test."""
    # A proxy from the developer's environment must not catch requests meant for 127.0.0.1.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with ScriptedServer() as s:
        yield s


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    """The scripted server for this test."""
    yield from scripted_server(monkeypatch)


class Sleeps:
    """A sleep double that records the waits asked for instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def quick_client(name: str = "test", sleeps: Sleeps | None = None, **policy: Any) -> JsonClient:
    """A client with tiny timeouts and recorded (not real) backoff sleeps."""
    settings: dict[str, Any] = {"timeout": CLIENT_TIMEOUT, "attempts": 3, "backoff": 0.1, **policy}
    return JsonClient(name, HttpPolicy(**settings), sleep=sleeps or Sleeps())


def test_json_answer_is_parsed_and_headers_are_sent(server: ScriptedServer) -> None:
    # Given a server answering JSON
    server.script(Reply(body={"hello": "world"}))
    # When the client asks with a header
    body = quick_client().get_json(f"{server.url}/x?q=1", {"X-Key": "secret"})
    # Then it gets the parsed answer and the server saw the header and a user agent
    assert body == {"hello": "world"}
    assert server.requests[0].headers["x-key"] == "secret"
    assert server.requests[0].headers["user-agent"].startswith("bulkapi")


def test_absent_status_is_none_not_an_error(server: ScriptedServer) -> None:
    # Given a server answering 404
    server.script(Reply(status=404, body=b""))
    # When 404 is declared to mean "nothing"
    body = quick_client().get_json(server.url, absent=(404,))
    # Then the answer is None after one request
    assert body is None
    assert len(server.requests) == 1


def test_5xx_is_retried_with_exponential_backoff_then_reported(server: ScriptedServer) -> None:
    # Given a server that always fails
    server.script(Reply(status=503, body=b"down"))
    sleeps = Sleeps()
    # When the client asks with three attempts
    with pytest.raises(ProviderError) as caught:
        quick_client(sleeps=sleeps, attempts=3).get_json(server.url)
    # Then it tried three times, doubling the wait, and reports a provider error
    assert caught.value.code == "provider_error"
    assert len(server.requests) == 3
    assert sleeps.calls == [0.1, 0.2]


def test_retry_after_is_honoured_but_capped(server: ScriptedServer) -> None:
    # Given a server rate limiting with a short and then an absurdly long Retry-After, then answering
    server.script(
        Reply(status=429, headers={"Retry-After": "1"}),
        Reply(status=429, headers={"Retry-After": "3600"}),
        Reply(body={"ok": True}),
    )
    sleeps = Sleeps()
    # When the client asks
    body = quick_client(sleeps=sleeps, max_retry_after=5.0).get_json(server.url)
    # Then it waited what the server asked, at most the cap, and got the answer
    assert body == {"ok": True}
    assert sleeps.calls == [1.0, 5.0]


def test_rate_limited_to_the_end_is_provider_rate_limited(server: ScriptedServer) -> None:
    # Given a server that keeps answering 429
    server.script(Reply(status=429, headers={"Retry-After": "0"}))
    # When the attempts run out
    with pytest.raises(ProviderError) as caught:
        quick_client(attempts=2).get_json(server.url)
    # Then the code says rate limited
    assert caught.value.code == "provider_rate_limited"


def test_client_errors_are_not_retried(server: ScriptedServer) -> None:
    # Given a server rejecting the key
    server.script(Reply(status=401, body={"message": "bad key"}))
    # When the client asks
    with pytest.raises(ProviderError) as caught:
        quick_client().get_json(server.url)
    # Then it asked once only
    assert caught.value.code == "provider_error"
    assert len(server.requests) == 1


def test_slow_server_times_out(server: ScriptedServer) -> None:
    # Given a server that answers long after the client's timeout
    server.script(Reply(delay=5.0))
    # When the client asks with two attempts
    with pytest.raises(ProviderError) as caught:
        quick_client(attempts=2).get_json(server.url)
    # Then both attempts timed out
    assert caught.value.code == "provider_timeout"
    assert len(server.requests) == 2


@pytest.mark.parametrize("body", [b"{not json", b"<html>busy</html>"])
def test_malformed_json_is_a_bad_response_without_retry(server: ScriptedServer, body: bytes) -> None:
    # Given a server answering 200 with something that is not JSON
    server.script(Reply(body=body))
    # When the client asks
    with pytest.raises(ProviderError) as caught:
        quick_client().get_json(server.url)
    # Then it is a bad response, asked once
    assert caught.value.code == "provider_bad_response"
    assert len(server.requests) == 1


def test_oversized_answer_is_a_bad_response(server: ScriptedServer) -> None:
    # Given an answer larger than the client accepts
    server.script(Reply(body=["x" * 100] * 100))
    # When the client asks with a small limit
    with pytest.raises(ProviderError) as caught:
        quick_client(max_body_bytes=1000).get_json(server.url)
    # Then it is refused as a bad response
    assert caught.value.code == "provider_bad_response"


def test_non_http_urls_are_refused() -> None:
    # Given a file URL, when the client is asked for it, then it refuses without opening anything
    with pytest.raises(ProviderError):
        quick_client().get_json("file:///etc/passwd")


def test_map_queries_runs_concurrently_within_the_bound(server: ScriptedServer) -> None:
    # Given a server that only answers once three requests are in flight together, and tracks the peak
    barrier = threading.Barrier(3, timeout=5)
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def lookup_factory(client: JsonClient) -> Callable[[str], Any]:
        def lookup(query: str) -> Any:
            nonlocal in_flight, peak
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            try:
                barrier.wait()
                return client.get_json(f"{server.url}/{query}")
            finally:
                with lock:
                    in_flight -= 1

        return lookup

    server.respond = lambda seen: Reply(body={"path": seen.path})
    client = quick_client(concurrency=3)
    # When nine queries run with a concurrency of three
    answers = client.map_queries(lookup_factory(client), [f"q{i}" for i in range(9)])
    # Then all answered in order, three at a time and never more
    assert answers == [{"path": f"/q{i}"} for i in range(9)]
    assert peak == 3


def test_map_queries_turns_failures_into_per_query_answers(server: ScriptedServer) -> None:
    # Given a lookup that fails for one query with a provider error and for another with a bug
    def lookup(query: str) -> str:
        if query == "bad":
            raise ProviderError("provider_bad_response")
        if query == "bug":
            raise KeyError(query)
        return query.upper()

    # When a batch is mapped
    answers = quick_client().map_queries(lookup, ["a", "bad", "bug"])
    # Then each query has its own answer and nothing raised
    assert answers == ["A", ProviderFailure("provider_bad_response"), ProviderFailure("provider_error")]


def test_rate_limiter_spaces_requests_evenly() -> None:
    # Given a limiter of 60 per minute on a frozen clock
    sleeps = Sleeps()
    limiter = RateLimiter(60, clock=lambda: 100.0, sleep=sleeps)
    # When three requests come at once
    for _ in range(3):
        limiter.acquire()
    # Then the first goes now, the others wait one and two seconds
    assert sleeps.calls == [1.0, 2.0]


def test_client_waits_for_the_rate_limiter(server: ScriptedServer) -> None:
    # Given a client sharing a limiter that records its waits
    sleeps = Sleeps()
    limiter = RateLimiter(120, clock=lambda: 0.0, sleep=sleeps)
    client = JsonClient("limited", HttpPolicy(timeout=CLIENT_TIMEOUT), limiter=limiter)
    # When it makes two requests
    client.get_json(server.url)
    client.get_json(server.url)
    # Then the second waited for its slot
    assert sleeps.calls == [0.5]
