"""The inline SSE endpoints over HTTP against `bulkapi serve`: incremental delivery, grammar, limits, credits,
disconnects, and the official `encrata` client unmodified."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import encrata
import pytest
import requests
import uvicorn

from functions.handlers import stream as stream_handler
from functions.logic.clock import utcnow
from functions.settings import StreamSettings
from tests import encrata_go
from tests.e2e.conftest import Server, new_account, start_server, stop_server
from tests.helpers import wait_for
from tests.unit.test_inline import KEY as FAKE_KEY
from tests.unit.test_inline import FakeKeys, FakeStore, SpyEnrich

pytestmark = pytest.mark.e2e

DELAY_MS = 50


@pytest.fixture(scope="module")
def delayed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Each value takes DELAY_MS to enrich, one chunk at a time: a slow provider stand-in (test-only hook)."""
    srv = start_server(
        tmp_path_factory.mktemp("sse"),
        BULKAPI_LOCAL_ENRICH_DELAY_MS=str(DELAY_MS),
        BULKAPI_INLINE_CONCURRENCY="1",
    )
    yield srv
    stop_server(srv)


@dataclass
class Block:
    """One SSE block as received, with the time its last byte arrived (seconds since the request was sent)."""

    lines: list[str]
    at: float

    @property
    def event(self) -> str | None:
        if self.lines[0].startswith(": done "):
            return "done"
        data = [line for line in self.lines if line.startswith("data: ")]
        if data == ["data: [DONE]"]:
            return "[DONE]"
        names = [line.removeprefix("event: ") for line in self.lines if line.startswith("event: ")]
        return names[0] if names else None

    @property
    def data(self) -> Any:
        if self.lines[0].startswith(": done "):
            return json.loads(self.lines[0].removeprefix(": done "))
        return json.loads(next(line for line in self.lines if line.startswith("data: ")).removeprefix("data: "))


class Stream:
    """A raw HTTP/1.1 POST whose body is read as it arrives, block by block."""

    def __init__(self, base_url: str, key: str | None, path: str, body: Any) -> None:
        url = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        self.started = time.monotonic()
        self.conn.request("POST", path, json.dumps(body), headers)
        self.resp = self.conn.getresponse()
        self.raw = b""

    def blocks(self) -> Iterator[Block]:
        """Each complete block as soon as its bytes are here."""
        pending = b""
        while True:
            chunk = self.resp.read1(65536)
            if not chunk:
                assert not pending, f"the stream ended inside a block: {pending!r}"
                return
            self.raw += chunk
            pending += chunk
            at = time.monotonic() - self.started
            while b"\n\n" in pending:
                block, pending = pending.split(b"\n\n", 1)
                yield Block(block.decode().split("\n"), at)

    def close(self) -> None:
        """Close the connection abruptly, like a client that goes away."""
        assert self.conn.sock is not None
        self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.conn.close()


def emails(n: int, tag: str = "") -> list[str]:
    return [f"first.last{tag}{i}@company{i % 13}.com" for i in range(n)]


def test_events_reach_the_client_while_later_inputs_are_still_being_enriched(delayed_server: Server) -> None:
    # Given a server where each value takes 50 ms to enrich, one chunk at a time, and 12 addresses
    account = new_account(delayed_server, 100)
    inputs = emails(12, "inc")
    # When they are posted
    stream = Stream(delayed_server.base_url, account.key, "/api/bulk-lookup", {"emails": inputs})
    assert stream.resp.status == 200
    got = list(stream.blocks())
    results = [b for b in got if b.event == "result"]
    # Then every input is answered, and the first event arrived before the last input could have been enriched:
    # the other 11 values need at least 11 x 50 ms after the first one, so a buffered answer would show no gap
    assert [b.data["email"] for b in results] == inputs
    gap = results[-1].at - results[0].at
    assert gap >= 0.8 * 11 * DELAY_MS / 1000, [round(b.at, 3) for b in results]
    assert len({round(b.at, 2) for b in results}) >= 3, "results came in fewer than 3 bursts"
    assert got[-1].event == "[DONE]" and account.balance == 88


def test_the_stream_has_the_exact_grammar(server: Server) -> None:
    # Given an account and addresses: valid, malformed, a duplicate in another case, a role account
    account = new_account(server, 50)
    inputs = ["ada.lovelace@example.com", "not an email", "ADA.LOVELACE@example.com", "info@acme.io"]
    # When they are posted
    stream = Stream(server.base_url, account.key, "/api/bulk-lookup", {"emails": inputs})
    blocks = list(stream.blocks())
    # Then it is a chunked event stream, named by a request id
    assert stream.resp.status == 200
    assert stream.resp.getheader("Content-Type", "").startswith("text/event-stream")
    assert stream.resp.getheader("Transfer-Encoding") == "chunked"
    request_id = stream.resp.getheader("X-Request-Id")
    assert request_id
    # And each input is one `event:` + one `data:` block, in input order, then the totals as an SSE comment (which
    # no client makes a record of), then [DONE]: exactly one data line per input
    text = stream.raw.decode()
    assert text.endswith('\n\n: done {"total":4,"credits_used":2}\n\ndata: [DONE]\n\n')
    assert [b.event for b in blocks] == ["result", "error", "result", "result", "done", "[DONE]"]
    for block in blocks[:4]:
        assert len(block.lines) == 2 and block.lines[0].startswith("event: ") and block.lines[1].startswith("data: ")
    assert blocks[-1].lines == ["data: [DONE]"]
    assert sum(line.startswith("data:") for line in text.split("\n")) == len(inputs) + 1
    # And results echo the input and carry validity; the failure says why, and is `invalid` for a Person reader
    assert [blocks[i].data["email"] for i in (0, 2, 3)] == [inputs[0], inputs[2], inputs[3]]
    assert blocks[0].data["validity"] == "valid" and blocks[3].data["validity"] == "risky"
    assert blocks[1].data == {
        "email": "not an email",
        "validity": "invalid",
        "error": "invalid_email",
        "message": blocks[1].data["message"],
    }
    # And the duplicate was charged once, the invalid one not at all: 3 reserved, 1 refunded, under that request id
    assert blocks[4].data == {"total": 4, "credits_used": 2} and account.balance == 48
    moves = [(e["kind"], e["amount"]) for e in account.entries() if e["request_id"] == request_id]
    assert sorted(moves) == [("refund", 1), ("reserve", -3)]
    account.assert_balanced()


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/api/bulk-lookup", {"emails": emails(1001)}, "too_many_items"),
        ("/api/agent/bulk-lookup", {"emails": emails(1001)}, "too_many_items"),
        ("/api/bulk-google-search", {"queries": ["q"] * 101}, "too_many_items"),
        ("/api/bulk-company-search", {"queries": ["Acme"] * 101}, "too_many_items"),
        ("/api/bulk-domain-search", {"queries": ["a.com"] * 101}, "too_many_items"),
        ("/api/bulk-ip-search", {"queries": ["1.1.1.1"] * 101}, "too_many_items"),
        ("/api/bulk-lookup", {"emails": []}, "empty_list"),
        ("/api/bulk-ip-search", {"queries": []}, "empty_list"),
        ("/api/bulk-lookup", {"email": ["a@b.com"]}, "unknown_parameter"),
        ("/api/bulk-domain-search", {"queries": [1, 2]}, "invalid_body"),
    ],
)
def test_limits_are_json_errors_before_any_work(server: Server, path: str, body: Any, code: str) -> None:
    # Given an account with credits
    account = new_account(server, 10_000)
    # When a request breaks a limit
    stream = Stream(server.base_url, account.key, path, body)
    payload = json.loads(stream.resp.read())
    # Then it is a 400 JSON error with the code and a message, and nothing is charged
    assert stream.resp.status == 400 and stream.resp.getheader("Content-Type") == "application/json"
    assert payload["error"] == code and payload["message"]
    assert account.balance == 10_000


@pytest.mark.parametrize("key", [None, "enc_test_unknown"])
def test_a_missing_or_unknown_key_is_401_like_the_rest_of_the_api(server: Server, key: str | None) -> None:
    # When a lookup is sent without a valid key
    stream = Stream(server.base_url, key, "/api/bulk-lookup", {"emails": ["a@example.com"]})
    # Then it is a 401 in the API's error shape
    assert stream.resp.status == 401 and json.loads(stream.resp.read())["error"] == "unauthorized"


def test_more_valid_items_than_credits_is_402_and_invalid_ones_do_not_count(server: Server) -> None:
    # Given an account with 2 credits
    account = new_account(server, 2)
    # When 3 valid addresses are posted
    refused = Stream(server.base_url, account.key, "/api/bulk-lookup", {"emails": emails(3, "poor")})
    # Then it is a 402 naming what is needed and what is there, and nothing is charged
    assert refused.resp.status == 402
    body = json.loads(refused.resp.read())
    assert (body["error"], body["required"], body["balance"]) == ("insufficient_credits", 3, 2) and body["message"]
    # When 2 valid addresses are posted among invalid ones
    allowed = Stream(server.base_url, account.key, "/api/bulk-lookup", {"emails": [*emails(2, "ok"), "nope", ""]})
    # Then they stream, and the balance ends at zero
    assert allowed.resp.status == 200
    assert [b.data for b in allowed.blocks() if b.event == "done"] == [{"total": 4, "credits_used": 2}]
    assert account.balance == 0


def test_a_client_that_disconnects_stops_the_work_and_pays_only_for_what_it_was_sent(delayed_server: Server) -> None:
    # Given 40 addresses at 50 ms each, one at a time: a full run takes 2 s
    account = new_account(delayed_server, 100)
    stream = Stream(delayed_server.base_url, account.key, "/api/bulk-lookup", {"emails": emails(40, "gone")})
    # When the client reads the first result and goes away
    first = next(stream.blocks())
    assert first.event == "result"
    stream.close()
    closed = time.monotonic()
    # Then all 40 were reserved before the stream began, and the refund of what was not sent lands well before a
    # full run could have ended (the work stopped): the one result sent is paid (at most 2 more may have been in
    # flight when the connection closed)
    request_id = stream.resp.getheader("X-Request-Id")

    def refunded() -> int | None:
        moves = [e["amount"] for e in account.entries() if e["request_id"] == request_id]
        return sum(moves) if len(moves) == 2 else None

    paid = -wait_for(refunded, timeout=1.0, interval=0.02)
    assert time.monotonic() - closed < 1.0
    assert 1 <= paid <= 3 and account.balance == 100 - paid
    assert sorted(e["kind"] for e in account.entries() if e["request_id"] == request_id) == ["refund", "reserve"]
    assert next(e["amount"] for e in account.entries() if e["kind"] == "reserve") == -40
    account.assert_balanced()


def test_the_official_client_bulk_lookup_yields_exactly_one_person_per_input(server: Server) -> None:
    # Given the official client pointed at the local server, and 50 addresses of which 5 are malformed
    account = new_account(server, 100)
    inputs = [f"ada.lovelace{i}@example.com" if i % 10 else f"broken{i}@" for i in range(50)]
    with encrata.Encrata(account.key, base_url=server.base_url) as client:
        # When it streams a lookup
        people = list(client.bulk_lookup(inputs))
    # Then it yields exactly one Person per input, in order; the malformed ones have validity "invalid"
    assert [p.email for p in people] == inputs
    assert [p.validity == "invalid" for p in people] == [i % 10 == 0 for i in range(50)]
    assert people[1].name == "Ada Lovelace"
    assert account.balance == 55
    account.assert_balanced()


def test_the_official_async_client_bulk_lookup_yields_exactly_one_person_per_input(server: Server) -> None:
    # Given the official async client and addresses, one malformed and one blank
    account = new_account(server, 100)
    inputs = ["ada.lovelace@example.com", "broken@", "", "grace.hopper@navy.mil"]

    async def run() -> list[encrata.Person]:
        async with encrata.AsyncEncrata(account.key, base_url=server.base_url) as client:
            return [p async for p in client.bulk_lookup(inputs)]

    # When it streams a lookup
    people = anyio.run(run)
    # Then one Person per input, in order, and only the valid ones charged
    assert [p.email for p in people] == inputs
    assert [p.validity for p in people] == ["valid", "invalid", "invalid", "valid"]
    assert account.balance == 98
    account.assert_balanced()


@pytest.mark.parametrize(
    ("method", "queries", "column", "ok"),
    [
        ("bulk_company_search", ["Acme Holdings GmbH", "Globex Corporation", ""], "legal_form", 2),
        ("bulk_domain_search", ["https://www.example.co.uk/x", "github.com", "not a domain"], "registrable_domain", 2),
        ("bulk_ip_search", ["8.8.8.8", "2606:4700:4700::1111", "999.1.1.1"], "version", 2),
    ],
)
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_the_official_client_searches_get_one_record_per_query_and_the_ledger_credits(
    server: Server, method: str, queries: list[str], column: str, ok: int, flavour: str
) -> None:
    # Given the official client and an account
    account = new_account(server, 100)
    # When it runs a bulk search
    if flavour == "sync":
        with encrata.Encrata(account.key, base_url=server.base_url) as client:
            response = getattr(client, method)(queries)
    else:

        async def run() -> Any:
            async with encrata.AsyncEncrata(account.key, base_url=server.base_url) as client:
                return await getattr(client, method)(queries)

        response = anyio.run(run)
    # Then it gets one record per query, echoing it, the valid ones with the type's columns
    assert [r["query"] for r in response.results] == queries
    assert sum(column in r for r in response.results) == ok
    # And credits_used is what the ledger moved
    assert response.credits_used == ok == 100 - account.balance
    account.assert_balanced()


def test_the_go_client_parsers_read_our_streams_exactly(server: Server) -> None:
    # Given a lookup and a search answered by the server
    account = new_account(server, 100)
    headers = {"Authorization": f"Bearer {account.key}"}
    lookup_inputs = ["ada.lovelace@example.com", "nope", "ada.lovelace@EXAMPLE.com"]
    lookup = requests.post(
        f"{server.base_url}/api/agent/bulk-lookup", json={"emails": lookup_inputs}, headers=headers, timeout=30
    )
    search_inputs = ["8.8.8.8", "x", "1.1.1.1"]
    search = requests.post(
        f"{server.base_url}/api/bulk-ip-search", json={"queries": search_inputs}, headers=headers, timeout=30
    )
    # When the port of the Go client's parsers reads them (tests/encrata_go.py)
    people = encrata_go.bulk_lookup(lookup.content)
    found = encrata_go.parse_bulk_search_stream(search.content)
    # Then one Person per input, one record per query, and the search's credits as the ledger moved them
    assert [p.email for p in people] == lookup_inputs and people[1].validity == "invalid"
    assert [r["query"] for r in found.results] == search_inputs
    assert found.credits_used == 2 and account.balance == 100 - 1 - 2
    account.assert_balanced()


def test_parallel_requests_cannot_spend_more_than_the_balance(server: Server) -> None:
    # Given an account with 100 credits
    account = new_account(server, 100)
    url = f"{server.base_url}/api/bulk-lookup"
    headers = {"Authorization": f"Bearer {account.key}"}

    def lookup(i: int) -> tuple[int, int]:
        resp = requests.post(url, json={"emails": emails(100, f"par{i}x")}, headers=headers, timeout=60)
        oks = resp.text.count("event: result") if resp.status_code == 200 else 0
        return resp.status_code, oks

    # When five requests of 100 valid addresses each are sent at once
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lookup, range(5)))
    # Then exactly one is served (100 results, all paid for) and four are refused with 402
    assert sorted(answers) == [(200, 100)] + [(402, 0)] * 4
    assert account.balance == 0
    account.assert_balanced()


def test_text_that_cannot_be_encoded_still_ends_the_stream(server: Server) -> None:
    # Given addresses with a lone surrogate between good ones (JSON allows the escape; UTF-8 cannot carry it)
    account = new_account(server, 10)
    body = '{"emails":["ok1@example.com","\\udcff@example.com","ok3@example.com","\\ud800"]}'
    # When it is posted
    stream = Stream(server.base_url, account.key, "/api/bulk-lookup", json.loads(body))
    blocks = list(stream.blocks())
    # Then every input is answered, the totals and [DONE] arrive, and only the two good ones are charged
    assert [b.event for b in blocks] == ["result", "error", "result", "error", "done", "[DONE]"]
    assert blocks[4].data == {"total": 4, "credits_used": 2} and account.balance == 8
    account.assert_balanced()


def test_the_official_client_google_search_gets_one_answer_per_query(server: Server) -> None:
    # Given a local server with no search provider
    account = new_account(server, 100)
    with encrata.Encrata(account.key, base_url=server.base_url) as client:
        # When the client searches
        response = client.bulk_google_search(["bulk enrichment api", "server-sent events"])
    # Then each query gets its error record, and nothing is charged
    assert [(r["query"], r["error"]) for r in response.results] == [
        ("bulk enrichment api", "provider_not_configured"),
        ("server-sent events", "provider_not_configured"),
    ]
    assert account.balance == 100


def test_the_official_client_reads_the_error_bodies(server: Server) -> None:
    # Given an account with 1 credit
    account = new_account(server, 1)
    with encrata.Encrata(account.key, base_url=server.base_url) as client:
        # When it breaks a limit, runs out of credits, or uses a bad key
        # Then it raises its own exception with the server's message
        with pytest.raises(encrata.InvalidRequestError, match="at least one"):
            client.bulk_domain_search([])
        with pytest.raises(encrata.InsufficientCreditsError, match="balance is 1"):
            list(client.bulk_lookup(emails(2, "enc")))
    with encrata.Encrata("enc_test_wrong", base_url=server.base_url) as client:
        with pytest.raises(encrata.AuthenticationError, match="not valid"):
            client.bulk_ip_search(["1.1.1.1"])


@pytest.fixture
def uvicorn_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, FakeStore]]:
    """The same ASGI app under uvicorn, as the Lambda Web Adapter runs it, with in-memory keys and balances."""
    store = FakeStore(100)
    settings = StreamSettings(jobs_table="jobs", inline_concurrency=1)
    app = stream_handler.create_app(stream_handler.Deps(settings, store, FakeKeys(), SpyEnrich(delay=DELAY_MS / 1000)))
    sock = socket.create_server(("127.0.0.1", 0))  # bound here: no other program can take the port meanwhile
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, what="uvicorn to start")
    yield f"http://127.0.0.1:{port}", store
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_under_uvicorn_events_stream_and_a_disconnect_stops_the_charge(
    uvicorn_server: tuple[str, FakeStore],
) -> None:
    # Given the app under uvicorn (ASGI 2.3: a disconnect is reported through receive, not by a failing send)
    base_url, store = uvicorn_server
    # When 12 addresses are streamed, 50 ms each
    streamed = Stream(base_url, FAKE_KEY, "/api/bulk-lookup", {"emails": emails(12, "uv")})
    results = [b for b in streamed.blocks() if b.event == "result"]
    # Then the events arrive spread over the enrichment, not at the end
    assert len(results) == 12 and results[-1].at - results[0].at >= 0.8 * 11 * DELAY_MS / 1000
    assert store.balance == 88
    # When a client reads one result of 40 and goes away
    leaving = Stream(base_url, FAKE_KEY, "/api/bulk-lookup", {"emails": emails(40, "uvgone")})
    assert next(leaving.blocks()).event == "result"
    leaving.close()
    # Then all 40 were reserved before the first event (read from the ledger: the refund may already have landed)
    reserves = [e["amount"] for e in store.ledger if e["kind"] == "reserve"]
    assert reserves == [-12, -40], reserves
    # And it is charged soon (the work stopped) and only for what was sent
    balance = wait_for(lambda: store.balance if not store.reservations else None, timeout=1.0, interval=0.02)
    assert 85 <= balance <= 87, balance
    store.assert_balanced()


def test_idempotency_key_replays_the_first_stream_without_a_second_charge(server: Server) -> None:
    # Given an account with 10 credits
    account = new_account(server, 10)
    url = f"{server.base_url}/api/bulk-lookup"
    headers = {"Authorization": f"Bearer {account.key}", "Idempotency-Key": "lookup-7"}
    body = {"emails": emails(3, "idem")}
    # When the same request is sent twice with one Idempotency-Key
    first = requests.post(url, json=body, headers=headers, timeout=30)
    second = requests.post(url, json=body, headers=headers, timeout=30)
    # Then the second answer is the first stream, byte for byte, and only 3 credits were taken
    assert first.status_code == second.status_code == 200
    assert second.content == first.content and first.content.endswith(b"data: [DONE]\n\n")
    assert second.headers["Idempotent-Replayed"] == "true"
    assert account.balance == 7
    # And the key with another body is refused
    other = requests.post(url, json={"emails": emails(2, "other")}, headers=headers, timeout=30)
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
    assert account.balance == 7


def test_a_refused_request_does_not_keep_its_idempotency_key(server: Server) -> None:
    # Given an account with 1 credit, refused for 2 valid addresses
    account = new_account(server, 1)
    url = f"{server.base_url}/api/bulk-lookup"
    headers = {"Authorization": f"Bearer {account.key}", "Idempotency-Key": "retry-me"}
    assert requests.post(url, json={"emails": emails(2, "r")}, headers=headers, timeout=30).status_code == 402
    # When credits are added and the same request is retried with the same key
    account.credits.grant_credits(account.id, 4, utcnow())
    retried = requests.post(url, json={"emails": emails(2, "r")}, headers=headers, timeout=30)
    # Then it runs (the refusal was not recorded as the answer)
    assert retried.status_code == 200 and account.balance == 3
    account.assert_balanced()
