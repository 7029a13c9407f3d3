"""Inline bulk lookups streamed as Server-Sent Events: limits, dedup, the event grammar, the stream loop, the money.

The grammar is fixed by what the official clients parse (`encrata` on PyPI, `Encratahq/encrata-go` bulk.go): both
turn every `data:` line before `data: [DONE]` of an email lookup into a `Person`, and the Go search parser keeps
every frame as a result except one carrying a `results` array or exactly `{"total": N}`. So, one block per input,
in input order:

    event: result                              event: error
    data: {"email": <input>, ...columns}       data: {"email": <input>, "validity": "invalid", "error": <code>,
                                                      "message": <text>}

then, for email lookups, the totals in an SSE comment (invisible to both clients) and the end:

    : done {"total": <inputs>, "credits_used": <charged>}

    data: [DONE]

and for searches (which echo the input as `query`) a summary frame both clients read `credits_used` from:

    event: done
    data: {"results": [], "total": <inputs>, "credits_used": <charged>}

    data: [DONE]

Heartbeats are SSE comments (`: keep-alive`), never data. Equal values in one request (the enricher's own notion
of equal) are computed once and answered once per input; credits are one per distinct `ok` value whose first block
was written, so a duplicate costs nothing more.

Money, as for jobs: before any work the request reserves one credit per distinct value that may be valid
(`reserve`), in one conditional transaction with its ledger entry (402 when the balance cannot cover them); when the
stream ends, however it ends, the part not used is refunded once (`settle`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
from anyio.abc import ObjectSendStream

from functions.enrich._common import fold_key, strip_key
from functions.errors import InputError, InsufficientCreditsError
from functions.logic.ports import InlineCreditPort
from functions.models import RowResult
from functions.observability import logger

Enrich = Callable[[Sequence[str]], list[RowResult]]
# Writes one SSE block; False once the client is gone (the block was not sent).
Write = Callable[[bytes], Awaitable[bool]]
# A chunk of value indexes and their results, from a worker to the writer.
Computed = tuple[list[int], list[RowResult]]

DONE = b"data: [DONE]\n\n"
HEARTBEAT = b": keep-alive\n\n"
# Chunks grow 1, 2, 4, ... up to this: the first event leaves after one value, later ones amortize thread hops.
MAX_CHUNK = 32

MESSAGES = {
    "empty_value": "the value is empty",
    "invalid_email": "not a valid email address",
    "invalid_query": "the query is too long",
    "invalid_company": "not a company name or domain",
    "invalid_domain": "not a valid domain",
    "invalid_ip": "not a valid IP address",
    "provider_not_configured": "no search provider is configured for this deployment",
    "provider_failed": "the provider could not answer this query",
    "enrichment_failed": "this value could not be enriched; it was not charged",
}


def _collapse(raw: str) -> str:
    return " ".join(raw.split())


@dataclass(frozen=True)
class InlineKind:
    """One inline endpoint: the body's list field, the key echoing each input, the lookup type, the item limit."""

    field: str
    input_key: str
    type: str
    max_items: int
    # Same notion of "equal values" as the type's enricher, so dedup never changes a result.
    key: Callable[[str], str]


_EMAILS = InlineKind("emails", "email", "email", 1000, fold_key)
KINDS: dict[str, InlineKind] = {
    "/api/bulk-lookup": _EMAILS,
    "/api/agent/bulk-lookup": _EMAILS,
    "/api/bulk-google-search": InlineKind("queries", "query", "google", 100, _collapse),
    "/api/bulk-company-search": InlineKind("queries", "query", "company", 100, strip_key),
    "/api/bulk-domain-search": InlineKind("queries", "query", "domain", 100, fold_key),
    "/api/bulk-ip-search": InlineKind("queries", "query", "ip", 100, strip_key),
}


def parse_items(kind: InlineKind, body: bytes) -> list[str]:
    """The list of inputs from a JSON body, checked against the limits before any work (400 otherwise)."""
    example = f'{{"{kind.field}": ["..."]}}'
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"the body must be JSON like {example}", code="invalid_body") from exc
    items = payload.get(kind.field) if isinstance(payload, dict) else None
    unknown = sorted(set(payload) - {kind.field}) if isinstance(payload, dict) else []
    if unknown:
        raise InputError(
            f"unknown field `{unknown[0]}`; the body is {example}", code="unknown_parameter", parameter=unknown[0]
        )
    if not isinstance(items, list):
        raise InputError(f"the body must be JSON like {example}", code="invalid_body")
    if not items:
        raise InputError(f"`{kind.field}` is empty: send at least one", code="empty_list")
    if len(items) > kind.max_items:
        raise InputError(
            f"`{kind.field}` has {len(items)} items; at most {kind.max_items} are allowed per request",
            code="too_many_items",
            max_items=kind.max_items,
            received=len(items),
        )
    if not all(isinstance(item, str) for item in items):
        raise InputError(f"every item of `{kind.field}` must be a string", code="invalid_body")
    return items


@dataclass
class Plan:
    """A request's inputs, its distinct values (first-seen order), which value each input is, and known results."""

    kind: InlineKind
    items: list[str]
    values: list[str] = field(default_factory=list)
    order: list[int] = field(default_factory=list)
    known: dict[int, RowResult] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """How many inputs (and so result or error events) the request has."""
        return len(self.items)


def plan_request(kind: InlineKind, items: Sequence[str]) -> Plan:
    """Map equal inputs to one value, so each distinct value is computed once."""
    index: dict[str, int] = {}
    plan = Plan(kind, list(items))
    for raw in items:
        key = kind.key(raw)
        if key not in index:
            index[key] = len(plan.values)
            plan.values.append(raw)
        plan.order.append(index[key])
    return plan


def reserve(plan: Plan, credits: InlineCreditPort, account_id: str, request_id: str, enrich: Enrich, now: str) -> int:
    """Reserve what the request may cost before any work; returns the credits reserved (402 when short).

    A blank value is invalid for every type, so the distinct non-blank values bound the cost without any work; most
    requests stop there. When the balance is below that bound, only an enrichment knows which values are valid:
    its results are kept in `plan.known` and reused by the stream, never recomputed.
    """
    bound = sum(1 for value in plan.values if value.strip())
    if bound == 0:
        return 0
    try:
        credits.reserve_inline(account_id, request_id, bound, now)
    except InsufficientCreditsError:
        pass
    else:
        return bound
    plan.known = dict(enumerate(enrich(plan.values)))
    needed = sum(1 for row in plan.known.values() if row.status != "invalid")
    if needed == 0:
        return 0
    try:
        credits.reserve_inline(account_id, request_id, needed, now)
    except InsufficientCreditsError as exc:
        balance = int(exc.details.get("balance", 0))
        raise InsufficientCreditsError(
            f"this request needs up to {needed} credits, the balance is {balance}", required=needed, balance=balance
        ) from exc
    return needed


def settle(credits: InlineCreditPort, account_id: str, request_id: str, reserved: int, used: int, now: str) -> int:
    """Refund the unused part of a reservation once; returns the credits the request was charged."""
    if reserved:
        credits.settle_inline(account_id, request_id, reserved, used, now)
    return used


# Keys a search frame must not carry at its top level: the official clients would read it as the summary.
SUMMARY_KEYS = frozenset({"results", "credits_used"})


def _json(data: dict[str, Any]) -> str:
    # json.dumps escapes newlines, so each payload is exactly one `data:` line. A lone surrogate (valid in a JSON
    # string, not encodable as UTF-8) is sent escaped instead, which any JSON parser reads back as it came.
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    try:
        payload.encode()
    except UnicodeEncodeError:
        payload = json.dumps(data, separators=(",", ":"), default=str)
    return payload


def _block(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {_json(data)}\n\n".encode()


def item_event(kind: InlineKind, raw: str, row: RowResult) -> bytes:
    """The block answering one input: `result` for an ok row, `error` otherwise."""
    if row.status != "ok":
        code = row.error or "enrichment_failed"
        reason = row.data.get("reason")
        message = reason if isinstance(reason, str) and reason else MESSAGES.get(code, code.replace("_", " "))
        error: dict[str, Any] = {kind.input_key: raw}
        if kind.type == "email":
            # A client reading every frame as a Person still sees why: `validity` is one of its fields.
            error["validity"] = "invalid" if row.status == "invalid" else "unknown"
        return _block("error", {**error, "error": code, "message": message})
    data: dict[str, Any] = {kind.input_key: raw, **{k: v for k, v in row.data.items() if k != kind.input_key}}
    if kind.type == "email":
        # The official client's Person reads `name` and `company`; these are the email columns that answer them.
        data.setdefault("name", row.data.get("full_name"))
        data.setdefault("company", row.data.get("company_guess"))
    else:
        for key in SUMMARY_KEYS & data.keys():
            data[f"{kind.type}_{key}"] = data.pop(key)
    return _block("result", data)


def done_event(kind: InlineKind, total: int, credits_used: int) -> bytes:
    """The summary sent after the last input's block: a comment for email lookups, a summary frame for searches."""
    if kind.type == "email":
        return f": done {_json({'total': total, 'credits_used': credits_used})}\n\n".encode()
    return _block("done", {"results": [], "total": total, "credits_used": credits_used})


@dataclass
class Tally:
    """What the client was sent: events, and the distinct ok values it owes credits for."""

    events: int = 0
    charged: set[int] = field(default_factory=set)

    @property
    def credits(self) -> int:
        """Credits owed for what was sent."""
        return len(self.charged)


def chunk_sizes(count: int, max_chunk: int) -> list[int]:
    """How `count` values are cut into chunks: 1, 2, 4, ... then `max_chunk` each (the first results come fast)."""
    sizes: list[int] = []
    size = 1
    while sum(sizes) < count:
        sizes.append(min(size, count - sum(sizes)))
        size = min(size * 2, max_chunk)
    return sizes


def _chunks(indexes: Sequence[int], max_chunk: int) -> list[list[int]]:
    out: list[list[int]] = []
    start = 0
    for size in chunk_sizes(len(indexes), max_chunk):
        out.append(list(indexes[start : start + size]))
        start += size
    return out


class EventStream:
    """Writes one block per input, in input order, as soon as its value is computed (`concurrency` chunks at a time);
    the blocks ready at the same moment go out in one write.

    Input order lets a client pair results with what it sent; values are computed in that order too, so a block
    waits only for values ahead of it. `run` returns when every input is answered or when `write` reports the
    client gone; cancel it to stop early. `tally` always holds what was written, whatever ended the stream.
    """

    def __init__(
        self,
        plan: Plan,
        enrich: Enrich,
        write: Write,
        *,
        concurrency: int = 4,
        heartbeat_seconds: float = 15.0,
        max_chunk: int = MAX_CHUNK,
    ) -> None:
        self.plan, self.enrich, self.write = plan, enrich, write
        self.concurrency = max(1, concurrency)
        self.heartbeat_seconds = heartbeat_seconds
        self.max_chunk = max_chunk
        self.tally = Tally()
        self._results: dict[int, RowResult] = dict(plan.known)
        self._next = 0
        self._lock = anyio.Lock()
        self._last_write = time.monotonic()

    async def run(self) -> None:
        """Answer the inputs whose results are known, then compute the rest and answer them as they come."""
        if not await self._flush() or self._next == self.plan.total:
            return
        pending = [i for i in range(len(self.plan.values)) if i not in self._results]
        chunks = iter(_chunks(pending, self.max_chunk))
        results_in, results_out = anyio.create_memory_object_stream[Computed](self.concurrency)
        async with anyio.create_task_group() as group:
            group.start_soon(self._heartbeat)
            # The first chunk (one value) alone: beside the others its thread would share the GIL with theirs and
            # wait out their time slices (measured: the first of 1,000 emails came ~18 ms after the headers).
            first = next(chunks, [])
            self._results.update(zip(first, await self._compute(first) if first else [], strict=True))
            if not await self._flush():
                group.cancel_scope.cancel()
                return
            for _ in range(self.concurrency):
                group.start_soon(self._work, chunks, results_in.clone())
            results_in.close()
            async with results_out:
                async for chunk, rows in results_out:
                    self._results.update(zip(chunk, rows, strict=True))
                    if not await self._flush():
                        break
            group.cancel_scope.cancel()

    async def _flush(self) -> bool:
        """Write every input from the next unanswered one up to the first whose value is not computed yet."""
        # One write for all of them: a write per event cost more than computing the event (a send through the
        # ASGI server and a socket write each), and a client reads the same bytes either way.
        blocks: list[bytes] = []
        charged: list[int] = []
        while self._next + len(blocks) < self.plan.total:
            index = self.plan.order[self._next + len(blocks)]
            row = self._results.get(index)
            if row is None:
                break
            blocks.append(item_event(self.plan.kind, self.plan.items[self._next + len(blocks)], row))
            if row.status == "ok":
                charged.append(index)
        if not blocks:
            return True
        if not await self._send(b"".join(blocks)):
            return False
        self._next += len(blocks)
        self.tally.events += len(blocks)
        self.tally.charged.update(charged)
        return True

    async def _send(self, block: bytes) -> bool:
        # One writer at a time, so a heartbeat never lands inside an event.
        async with self._lock:
            sent = await self.write(block)
            self._last_write = time.monotonic()
        return sent

    async def _work(self, chunks: Iterator[list[int]], out: ObjectSendStream[Computed]) -> None:
        async with out:
            # One shared iterator: each chunk is taken by exactly one worker, in value order.
            for chunk in chunks:
                await out.send((chunk, await self._compute(chunk)))

    async def _compute(self, chunk: list[int]) -> list[RowResult]:
        values = [self.plan.values[i] for i in chunk]
        try:
            return await anyio.to_thread.run_sync(self.enrich, values, abandon_on_cancel=True)
        except Exception:  # one failing chunk must not cut the stream: its inputs answer an error, unpaid
            logger.exception("inline enrichment failed", type=self.plan.kind.type, values=len(values))
            return [RowResult(status="error", error="enrichment_failed") for _ in values]

    async def _heartbeat(self) -> None:
        while True:
            await anyio.sleep(max(0.0, self._last_write + self.heartbeat_seconds - time.monotonic()))
            idle = time.monotonic() - self._last_write >= self.heartbeat_seconds
            if idle and not await self._send(HEARTBEAT):
                return
