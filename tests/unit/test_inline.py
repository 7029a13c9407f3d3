"""The inline SSE endpoints without a network: grammar, limits, credits, dedup, heartbeat, disconnect."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import MutableMapping, Sequence
from typing import Any

import anyio
import pytest
from starlette.testclient import TestClient

from functions.enrich import enrich_values, result_columns
from functions.errors import InsufficientCreditsError
from functions.handlers import stream
from functions.logic import inline
from functions.models import RowResult
from functions.settings import StreamSettings
from tests import encrata_go

KEY = "enc_test_unit"
ACCOUNT = "acct_unit"


class FakeKeys:
    """The account store's key lookup: one known key."""

    def account_for_key(self, key: str) -> str | None:
        return ACCOUNT if key == KEY else None


class FakeStore:
    """Balances and the ledger in memory, with the credit store's inline money rules (reserve, settle once)."""

    def __init__(self, credits: int) -> None:
        self.balances = {ACCOUNT: credits}
        self.ledger: list[dict[str, Any]] = [{"kind": "grant", "amount": credits, "request_id": None}]
        self.reservations: dict[str, int] = {}
        self.lock = threading.Lock()

    def account_credits(self, account_id: str) -> int | None:
        return self.balances.get(account_id)

    def reserve_inline(self, account_id: str, request_id: str, credits: int, now: str) -> None:
        with self.lock:
            if self.balances[account_id] < credits:
                balance = self.balances[account_id]
                raise InsufficientCreditsError(
                    f"this request needs {credits} credits, the balance is {balance}", required=credits, balance=balance
                )
            assert request_id not in self.reservations
            self.balances[account_id] -= credits
            self.reservations[request_id] = credits
            self.ledger.append({"kind": "reserve", "amount": -credits, "request_id": request_id})

    def settle_inline(self, account_id: str, request_id: str, reserved: int, used: int, now: str) -> int:
        with self.lock:
            if self.reservations.pop(request_id, None) != reserved:
                return 0
            refund = reserved - used
            if refund:
                self.balances[account_id] += refund
                self.ledger.append({"kind": "refund", "amount": refund, "request_id": request_id})
            return refund

    @property
    def balance(self) -> int:
        return self.balances[ACCOUNT]

    def assert_balanced(self) -> None:
        """The invariant: the balance is the sum of the ledger, and no reservation is left open."""
        assert self.balance == sum(e["amount"] for e in self.ledger) and not self.reservations


class SpyEnrich:
    """The real enrichment, recording every value it computes and the most calls in flight at once."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.values: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    def __call__(self, job_type: str, values: Sequence[str]) -> list[RowResult]:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.values.extend(values)
        try:
            if self.delay:
                time.sleep(self.delay * len(values))
            return enrich_values(job_type, values)
        finally:
            with self.lock:
                self.in_flight -= 1


SETTINGS = StreamSettings(jobs_table="jobs")


def client_for(store: FakeStore, enrich: Any = None, settings: StreamSettings = SETTINGS) -> TestClient:
    deps = stream.Deps(settings, store, FakeKeys(), enrich or SpyEnrich())
    return TestClient(stream.create_app(deps), headers={"Authorization": f"Bearer {KEY}"})


def blocks(text: str) -> list[list[str]]:
    """The SSE body as blocks of lines; asserts every block is terminated by a blank line."""
    assert text.endswith("\n\n"), text[-50:]
    return [block.split("\n") for block in text[:-2].split("\n\n")]


def events(text: str) -> list[tuple[str, Any]]:
    """(event, data) per block, comments dropped except the `: done {...}` totals; asserts the grammar."""
    out: list[tuple[str, Any]] = []
    for block in blocks(text):
        if len(block) == 1 and block[0].startswith(": done "):
            out.append(("done", json.loads(block[0].removeprefix(": done "))))
            continue
        lines = [line for line in block if not line.startswith(":")]
        if not lines:
            continue
        if lines == ["data: [DONE]"]:
            out.append(("[DONE]", None))
            continue
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        out.append((lines[0].removeprefix("event: "), json.loads(lines[1].removeprefix("data: "))))
    return out


def test_each_email_gets_one_event_then_the_summary_then_done() -> None:
    # Given an account with credits and four addresses, one of them malformed
    store = FakeStore(100)
    emails = ["ada.lovelace@example.com", "not-an-email", "info@acme.io", "grace@navy.mil"]
    # When they are posted to the inline lookup
    resp = client_for(store).post("/api/bulk-lookup", json={"emails": emails})
    # Then the answer is an event stream: one block per input, the totals as a comment, then [DONE], and no other
    # data line (the official clients make a Person of every data line)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    assert "content-length" not in resp.headers and resp.headers["x-request-id"]
    got = events(resp.text)
    assert [name for name, _ in got] == ["result", "error", "result", "result", "done", "[DONE]"]
    assert sum(line.startswith("data:") for block in blocks(resp.text) for line in block) == len(emails) + 1
    assert resp.text.endswith('\n\n: done {"total":4,"credits_used":3}\n\ndata: [DONE]\n\n')
    first = got[0][1]
    assert first["email"] == "ada.lovelace@example.com" and first["validity"] == "valid"
    assert first["name"] == "Ada Lovelace" and first["normalized"] == "ada.lovelace@example.com"
    assert got[1][1] == {
        "email": "not-an-email",
        "validity": "invalid",
        "error": "invalid_email",
        "message": got[1][1]["message"],
    }
    assert "@" in got[1][1]["message"]
    # And only the ok rows are charged, once: 4 reserved, 1 refunded, under the answer's request id
    assert got[4][1] == {"total": 4, "credits_used": 3}
    assert store.balance == 97
    assert [(e["kind"], e["amount"]) for e in store.ledger] == [("grant", 100), ("reserve", -4), ("refund", 1)]
    assert {e["request_id"] for e in store.ledger[1:]} == {resp.headers["x-request-id"]}
    store.assert_balanced()


def test_agent_path_is_the_same_endpoint() -> None:
    # Given the path the official clients call
    store = FakeStore(10)
    # When one address is posted there
    resp = client_for(store).post("/api/agent/bulk-lookup", json={"emails": ["jane.doe@example.org"]})
    # Then it answers like /api/bulk-lookup
    assert [name for name, _ in events(resp.text)] == ["result", "done", "[DONE]"]


def test_duplicates_are_computed_once_answered_per_input_and_charged_once() -> None:
    # Given the same address three times, differing in case and spaces
    store, spy = FakeStore(100), SpyEnrich()
    emails = ["Jane.Doe@example.org", " jane.doe@example.org", "JANE.DOE@EXAMPLE.ORG", "bob@example.org"]
    # When they are streamed
    got = events(client_for(store, spy).post("/api/bulk-lookup", json={"emails": emails}).text)
    # Then the address was enriched once, every input got its own event echoing it, and one credit was taken for it
    assert sorted(spy.values) == ["Jane.Doe@example.org", "bob@example.org"]
    assert sorted(data["email"] for name, data in got if name == "result") == sorted(emails)
    assert got[-2] == ("done", {"total": 4, "credits_used": 2}) and store.balance == 98


@pytest.mark.parametrize(
    ("path", "query", "input_key_value"),
    [
        ("/api/bulk-domain-search", "https://www.example.co.uk/page", ("registrable_domain", "example.co.uk")),
        ("/api/bulk-ip-search", "8.8.8.8", ("version", 4)),
        ("/api/bulk-company-search", "Acme Holdings GmbH", ("legal_form", "GmbH")),
    ],
)
def test_searches_echo_the_query_with_the_columns(path: str, query: str, input_key_value: tuple[str, Any]) -> None:
    # Given one valid and one empty query
    store = FakeStore(10)
    # When they are posted to a search endpoint
    got = events(client_for(store).post(path, json={"queries": [query, "  "]}).text)
    # Then the result echoes the query as given, with the type's columns, and the empty one is an error
    name, data = got[0]
    key, value = input_key_value
    assert name == "result" and data["query"] == query and data[key] == value
    assert got[1] == ("error", {"query": "  ", "error": "empty_value", "message": "empty"})
    assert got[2] == ("done", {"results": [], "total": 2, "credits_used": 1}) and store.balance == 9


def test_google_without_a_provider_answers_errors_and_charges_nothing() -> None:
    # Given a deployment with no search provider
    store = FakeStore(10)
    # When two queries are searched
    got = events(client_for(store).post("/api/bulk-google-search", json={"queries": ["a b", "c"]}).text)
    # Then each is an error event naming the cause, and nothing is charged
    assert [data["error"] for name, data in got if name == "error"] == ["provider_not_configured"] * 2
    assert got[-2] == ("done", {"results": [], "total": 2, "credits_used": 0}) and store.balance == 10


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/api/bulk-lookup", {"emails": [f"u{i}@example.com" for i in range(1001)]}, "too_many_items"),
        ("/api/bulk-ip-search", {"queries": ["1.1.1.1"] * 101}, "too_many_items"),
        ("/api/bulk-lookup", {"emails": []}, "empty_list"),
        ("/api/bulk-domain-search", {"queries": []}, "empty_list"),
        ("/api/bulk-lookup", {"queries": ["a@b.com"]}, "unknown_parameter"),
        ("/api/bulk-lookup", {"emails": "a@b.com"}, "invalid_body"),
        ("/api/bulk-lookup", {"emails": ["a@b.com", 7]}, "invalid_body"),
        ("/api/bulk-company-search", ["Acme"], "invalid_body"),
    ],
)
def test_limits_are_refused_before_any_work(path: str, body: Any, code: str) -> None:
    # Given an account with credits
    store, spy = FakeStore(100_000), SpyEnrich()
    # When a request breaks a limit
    resp = client_for(store, spy).post(path, json=body)
    # Then it is a 400 JSON error with a code, nothing was enriched and nothing charged
    assert resp.status_code == 400 and resp.headers["content-type"] == "application/json"
    assert resp.json()["error"] == code and resp.json()["message"]
    assert spy.values == [] and store.balance == 100_000


def test_too_many_items_says_the_limit() -> None:
    # Given 101 queries
    resp = client_for(FakeStore(1000)).post("/api/bulk-google-search", json={"queries": ["q"] * 101})
    # Then the error says the limit and what was received
    assert resp.json() == {
        "error": "too_many_items",
        "code": "too_many_items",
        "message": "`queries` has 101 items; at most 100 are allowed per request",
        "max_items": 100,
        "received": 101,
    }


def test_a_body_that_is_not_json_is_invalid() -> None:
    # When the body is not JSON
    resp = client_for(FakeStore(10)).post("/api/bulk-lookup", content=b"emails=a@b.com")
    # Then it is invalid_body
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_body"


@pytest.mark.parametrize("header", [None, "Bearer ", "Basic abc", "Bearer enc_test_unknown"])
def test_requests_without_a_valid_key_are_unauthorized(header: str | None) -> None:
    # Given a request with a missing, malformed or unknown key
    client = client_for(FakeStore(10))
    headers = {"Authorization": header} if header is not None else {}
    if header is None:
        del client.headers["Authorization"]
    # When it is sent
    resp = client.post("/api/bulk-lookup", json={"emails": ["a@b.com"]}, headers=headers)
    # Then it is a 401 in the API's error shape
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized" and resp.json()["message"]


def test_more_valid_items_than_credits_is_402_before_streaming() -> None:
    # Given an account with 2 credits
    store = FakeStore(2)
    # When 3 valid addresses are posted
    resp = client_for(store).post("/api/bulk-lookup", json={"emails": ["a@example.com", "b@example.com", "c@x.io"]})
    # Then it is a 402 saying what was needed and what is there; nothing charged
    assert resp.status_code == 402
    assert resp.json() | {"message": ""} == {
        "error": "insufficient_credits",
        "code": "insufficient_credits",
        "message": "",
        "required": 3,
        "balance": 2,
    }
    assert store.balance == 2


def test_invalid_items_do_not_count_against_the_balance() -> None:
    # Given an account with 2 credits and 2 valid addresses among invalid ones
    store, spy = FakeStore(2), SpyEnrich()
    emails = ["a@example.com", "nope", "", "b@example.com", "also nope"]
    # When they are posted
    resp = client_for(store, spy).post("/api/bulk-lookup", json={"emails": emails})
    # Then the stream runs, each value computed once (the credit check's results are reused), and 2 are charged
    got = events(resp.text)
    assert resp.status_code == 200 and got[-2] == ("done", {"total": 5, "credits_used": 2})
    assert sorted(spy.values) == sorted(emails) and store.balance == 0


def test_an_idle_stream_sends_comment_heartbeats_only() -> None:
    # Given a heartbeat every 20 ms and a provider taking 150 ms per value
    settings = StreamSettings(jobs_table="jobs", inline_heartbeat_seconds=0.02)
    store = FakeStore(10)
    # When two addresses are streamed
    client = client_for(store, SpyEnrich(delay=0.15), settings)
    resp = client.post("/api/bulk-lookup", json={"emails": ["a@x.io", "b@y.io"]})
    # Then keep-alive comments were sent in between, and still exactly one data line per input plus the end
    lines = [line for block in blocks(resp.text) for line in block]
    assert lines.count(": keep-alive") >= 2
    assert [name for name, _ in events(resp.text)] == ["result", "result", "done", "[DONE]"]


def test_concurrency_is_bounded() -> None:
    # Given a concurrency of 2 and a slow provider
    settings = StreamSettings(jobs_table="jobs", inline_concurrency=2)
    spy = SpyEnrich(delay=0.002)
    # When 200 addresses are streamed
    emails = [f"user{i}@example.com" for i in range(200)]
    got = events(client_for(FakeStore(1000), spy, settings).post("/api/bulk-lookup", json={"emails": emails}).text)
    # Then every one is answered, and never more than 2 enrichment calls ran at once
    assert got[-2] == ("done", {"total": 200, "credits_used": 200})
    assert spy.max_in_flight == 2


def test_a_client_that_leaves_stops_the_work_and_pays_only_for_what_it_was_sent() -> None:
    # Given 200 addresses, a provider taking 20 ms per value (a full run takes over 1 s), and a connection that
    # closes after the response start and 2 writes
    store, spy = FakeStore(1000), SpyEnrich(delay=0.02)
    body = json.dumps({"emails": [f"user{i}@example.com" for i in range(200)]}).encode()
    sent: list[bytes] = []

    async def receive() -> dict[str, Any]:
        if not sent:
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body" and len(sent) == 3:
            raise ConnectionResetError
        if message["type"] == "http.response.body":
            sent.append(message["body"])
        if message["type"] == "http.response.start":
            sent.append(b"")

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/bulk-lookup",
        "raw_path": b"/api/bulk-lookup",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", f"Bearer {KEY}".encode()), (b"content-type", b"application/json")],
    }
    app = stream.create_app(stream.Deps(SETTINGS, store, FakeKeys(), spy))
    # When the app runs until the client is gone
    started = time.monotonic()
    anyio.run(app, scope, receive, send)
    elapsed = time.monotonic() - started
    # Then 2 writes of result events were sent after the response start (the events computed by then, together),
    # exactly the events sent were charged, and the work stopped early
    events = [line for b in sent[1:] for line in b.split(b"\n") if line.startswith(b"event: ")]
    assert len(sent) == 3 and events and set(events) == {b"event: result"}
    assert store.balance == 1000 - len(events)
    store.assert_balanced()
    assert elapsed < 0.5 and len(spy.values) < 200


def test_a_settlement_refunds_once_however_often_it_runs() -> None:
    # Given a request that reserved 5 credits and used 2
    store = FakeStore(10)
    store.reserve_inline(ACCOUNT, "req_1", 5, "t")
    # When it is settled twice (the stream's end and a retry)
    charged = [inline.settle(store, ACCOUNT, "req_1", 5, 2, "t") for _ in range(2)]
    # Then it was charged 2 both times, refunded 3 once, and the balance is the ledger's sum
    assert charged == [2, 2] and store.balance == 8
    store.assert_balanced()


def test_a_reservation_takes_the_distinct_non_blank_values_without_any_work() -> None:
    # Given 4 inputs, two equal in another case and one blank, and an account that can afford them
    store, spy = FakeStore(10), SpyEnrich()
    plan = inline.plan_request(inline.KINDS["/api/bulk-lookup"], ["a@x.io", "A@x.io", "   ", "b@x.io"])
    # When credits are reserved
    reserved = inline.reserve(plan, store, ACCOUNT, "req_2", lambda v: spy("email", v), "t")
    # Then the two distinct addresses are reserved and nothing was enriched
    assert reserved == 2 and store.balance == 8 and spy.values == []


def test_a_reservation_the_bound_cannot_cover_counts_the_valid_values() -> None:
    # Given an account with 1 credit and one valid address among invalid ones
    store, spy = FakeStore(1), SpyEnrich()
    plan = inline.plan_request(inline.KINDS["/api/bulk-lookup"], ["nope", "ok.person@example.com", "also nope"])
    # When credits are reserved
    reserved = inline.reserve(plan, store, ACCOUNT, "req_3", lambda v: spy("email", v), "t")
    # Then only the valid one is reserved, and its result is kept for the stream
    assert reserved == 1 and store.balance == 0 and len(plan.known) == 3


def test_chunks_grow_from_one_so_the_first_event_is_early() -> None:
    # Given 100 values to compute
    # When they are cut into chunks
    sizes = [len(c) for c in inline._chunks(list(range(100)), 32)]
    # Then the first chunk has one value, sizes double up to the cap, and every value is in exactly one chunk
    assert sizes == [1, 2, 4, 8, 16, 32, 32, 5] and sum(sizes) == 100


def test_the_go_client_reads_one_person_per_input_from_a_lookup() -> None:
    # Given a lookup with valid, invalid, blank and duplicate addresses
    store = FakeStore(100)
    emails = ["ada.lovelace@example.com", "nope", "", "ADA.LOVELACE@example.com", "grace@navy.mil"]
    resp = client_for(store).post("/api/agent/bulk-lookup", json={"emails": emails})
    # When the Go client's parser reads the answer
    people = encrata_go.bulk_lookup(resp.content)
    # Then it has exactly one Person per input, in order, the invalid ones saying so
    assert [p.email for p in people] == emails
    assert [p.validity for p in people] == ["valid", "invalid", "invalid", "valid", "valid"]
    assert people[0].name == "Ada Lovelace"


@pytest.mark.parametrize(
    ("path", "queries"),
    [
        ("/api/bulk-domain-search", ["example.com", "not a domain", "github.com"]),
        ("/api/bulk-ip-search", ["8.8.8.8", "300.1.1.1", "1.1.1.1"]),
        ("/api/bulk-company-search", ["Acme Holdings GmbH", "", "Globex Corporation"]),
        ("/api/bulk-google-search", ["bulk api", "sse"]),
    ],
)
def test_the_go_client_reads_one_record_per_query_and_the_credits_from_a_search(path: str, queries: list[str]) -> None:
    # Given a search with valid and invalid queries
    store = FakeStore(100)
    resp = client_for(store).post(path, json={"queries": queries})
    # When the Go client's parser reads the answer
    parsed = encrata_go.parse_bulk_search_stream(resp.content)
    # Then it has one record per query, in order, and the credits the ledger moved (Go reports len(results)
    # when credits_used is 0, so the check holds where something was charged)
    assert [r["query"] for r in parsed.results] == queries
    used = 100 - store.balance
    assert parsed.credits_used == (used or len(queries))
    store.assert_balanced()


@pytest.mark.parametrize("job_type", ["google", "company", "domain", "ip"])
def test_no_search_column_can_pass_for_the_summary(job_type: str) -> None:
    # Given every column a search result carries
    columns = set(result_columns(job_type))
    # Then none is a key the official clients read as the stream's summary
    assert not columns & inline.SUMMARY_KEYS


@pytest.mark.parametrize(
    "bad",
    ["\udcff@example.com", "\ud800", "a\udfffb@example.com", "\x00@example.com", "ok\u2028@example.com"],
)
def test_text_that_cannot_be_encoded_is_answered_and_the_stream_ends(bad: str) -> None:
    # Given a lookup with a lone surrogate (or other odd text) between two good addresses, sent as JSON escapes
    store = FakeStore(10)
    body = json.dumps({"emails": ["ok1@example.com", bad, "ok3@example.com"]})  # ensure_ascii: \udcff stays escaped
    # When it is posted
    resp = client_for(store).post("/api/bulk-lookup", content=body, headers={"Content-Type": "application/json"})
    # Then every input is answered, the stream ends with [DONE], and only the good ones are charged
    got = events(resp.text)
    assert [name for name, _ in got] == ["result", "error", "result", "done", "[DONE]"]
    assert got[1][1]["email"] == bad and got[1][1]["validity"] == "invalid"
    assert got[3][1] == {"total": 3, "credits_used": 2} and store.balance == 8
    store.assert_balanced()


def test_an_enrichment_that_raises_answers_errors_and_the_stream_still_ends() -> None:
    # Given an enricher that fails on every value
    store = FakeStore(10)

    def broken(job_type: str, values: Sequence[str]) -> list[RowResult]:
        raise RuntimeError("provider exploded")

    client = client_for(store, broken)
    # When two addresses are looked up
    got = events(client.post("/api/bulk-lookup", json={"emails": ["a@example.com", "b@example.com"]}).text)
    # Then each is an unpaid error, and the stream ends normally with everything refunded
    assert [(n, d.get("error") if d else None) for n, d in got] == [
        ("error", "enrichment_failed"),
        ("error", "enrichment_failed"),
        ("done", None),
        ("[DONE]", None),
    ]
    assert got[2][1] == {"total": 2, "credits_used": 0} and store.balance == 10
    store.assert_balanced()
