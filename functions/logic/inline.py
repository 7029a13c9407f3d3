"""Inline bulk lookups streamed as Server-Sent Events: limits, dedup, the event grammar, the stream loop, the charge.

The grammar existing clients parse (issue 5), one block per input, then the summary:

    event: result                              event: error
    data: {"email": <input>, ...columns}       data: {"email": <input>, "error": <code>, "message": <text>}

    event: done
    data: {"total": <inputs>, "credits_used": <charged>}

    data: [DONE]

Searches echo the input as `query` instead of `email`. Heartbeats are SSE comments (`: keep-alive`), never data.
Blocks come in input order. Equal values in one request (the enricher's own notion of equal) are computed once and
answered once per input; credits are one per distinct `ok` value whose first block was written, so a duplicate
costs nothing more.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import anyio.to_thread
from anyio.abc import ObjectSendStream

from functions.enrich._common import fold_key, strip_key
from functions.errors import InputError, InsufficientCreditsError
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


def require_credits(plan: Plan, balance: int, enrich: Enrich) -> None:
    """Raise 402 when the request's valid values exceed the balance; keeps any results it had to compute."""
    # A blank value is invalid for every type, so this bound needs no enrichment; most requests stop here.
    if balance >= sum(1 for value in plan.values if value.strip()):
        return
    # Only an enrichment knows which values are valid; its results are reused by the stream, never recomputed.
    plan.known = dict(enumerate(enrich(plan.values)))
    needed = sum(1 for row in plan.known.values() if row.status != "invalid")
    if needed > balance:
        raise InsufficientCreditsError(
            f"this request needs up to {needed} credits, the balance is {balance}", required=needed, balance=balance
        )


def _block(event: str, data: dict[str, Any]) -> bytes:
    # json.dumps escapes newlines, so each payload is exactly one `data:` line.
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return f"event: {event}\ndata: {payload}\n\n".encode()


def item_event(kind: InlineKind, raw: str, row: RowResult) -> bytes:
    """The block answering one input: `result` for an ok row, `error` otherwise."""
    if row.status != "ok":
        code = row.error or "enrichment_failed"
        reason = row.data.get("reason")
        message = reason if isinstance(reason, str) and reason else MESSAGES.get(code, code.replace("_", " "))
        return _block("error", {kind.input_key: raw, "error": code, "message": message})
    data: dict[str, Any] = {kind.input_key: raw, **{k: v for k, v in row.data.items() if k != kind.input_key}}
    if kind.type == "email":
        # The official client's Person reads `name` and `company`; these are the email columns that answer them.
        data.setdefault("name", row.data.get("full_name"))
        data.setdefault("company", row.data.get("company_guess"))
    return _block("result", data)


def done_event(total: int, credits_used: int) -> bytes:
    """The summary block sent after the last input's block."""
    return _block("done", {"total": total, "credits_used": credits_used})


@dataclass
class Tally:
    """What the client was sent: events, and the distinct ok values it owes credits for."""

    events: int = 0
    charged: set[int] = field(default_factory=set)

    @property
    def credits(self) -> int:
        """Credits owed for what was sent."""
        return len(self.charged)


def _chunks(indexes: Sequence[int], max_chunk: int) -> list[list[int]]:
    out: list[list[int]] = []
    start, size = 0, 1
    while start < len(indexes):
        out.append(list(indexes[start : start + size]))
        start += size
        size = min(size * 2, max_chunk)
    return out


class EventStream:
    """Writes one block per input, in input order, as soon as its value is computed (`concurrency` chunks at a time).

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
            for _ in range(self.concurrency):
                group.start_soon(self._work, chunks, results_in.clone())
            results_in.close()
            group.start_soon(self._heartbeat)
            async with results_out:
                async for chunk, rows in results_out:
                    self._results.update(zip(chunk, rows, strict=True))
                    if not await self._flush():
                        break
            group.cancel_scope.cancel()

    async def _flush(self) -> bool:
        """Write every input from the next unanswered one up to the first whose value is not computed yet."""
        while self._next < self.plan.total:
            index = self.plan.order[self._next]
            row = self._results.get(index)
            if row is None:
                return True
            if not await self._send(item_event(self.plan.kind, self.plan.items[self._next], row)):
                return False
            self._next += 1
            self.tally.events += 1
            if row.status == "ok":
                self.tally.charged.add(index)
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
                values = [self.plan.values[i] for i in chunk]
                rows = await anyio.to_thread.run_sync(self.enrich, values, abandon_on_cancel=True)
                await out.send((chunk, rows))

    async def _heartbeat(self) -> None:
        while True:
            await anyio.sleep(max(0.0, self._last_write + self.heartbeat_seconds - time.monotonic()))
            idle = time.monotonic() - self._last_write >= self.heartbeat_seconds
            if idle and not await self._send(HEARTBEAT):
                return


class CreditStore(Protocol):
    """The part of the job store the charge needs: the table, its DynamoDB client and the balance."""

    table: str
    ddb: Any

    def account_credits(self, account_id: str) -> int | None:
        """The account's balance, or None."""
        ...


def charge(store: CreditStore, account_id: str, credits: int) -> int:
    """Take `credits` from the account in one conditional write, never below zero; returns what was taken."""
    conditional = store.ddb.exceptions.ConditionalCheckFailedException
    # Another request or a job can spend between our credit check and now; then take what is left.
    for _ in range(3):
        if credits <= 0:
            return 0
        try:
            store.ddb.update_item(
                TableName=store.table,
                Key={"pk": {"S": f"ACCOUNT#{account_id}"}, "sk": {"S": "ACCOUNT"}},
                UpdateExpression="ADD #c :minus",
                ConditionExpression="#c >= :needed",
                ExpressionAttributeNames={"#c": "credits"},
                ExpressionAttributeValues={":minus": {"N": str(-credits)}, ":needed": {"N": str(credits)}},
            )
        except conditional:
            balance = store.account_credits(account_id) or 0
            logger.warning("balance fell below the results sent", account_id=account_id, owed=credits, balance=balance)
            credits = min(credits, balance)
            continue
        return credits
    return 0
