"""The inline bulk endpoints as an ASGI app answering Server-Sent Events while results are computed.

Thin: authenticate, parse and check the limits, reserve the credits, then stream and settle
(functions/logic/inline.py). Every answer carries `X-Request-Id`; the ledger entries carry the same id.
In AWS the Lambda Web Adapter runs this app under uvicorn with response streaming (infra/STREAMING.md);
locally the gateway drives the same app (local/gateway.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from functions.adapters import idempotency
from functions.adapters.accounts import AccountStore
from functions.adapters.credits import CreditStore
from functions.adapters.enrichment import RefreshingSources
from functions.adapters.idempotency import InlineReplay
from functions.enrich import enrich_values
from functions.enrich.online import settle_unasked
from functions.errors import BulkApiError, InputError, error_body
from functions.http import answers
from functions.http.access import KeyCheck, account_from_headers
from functions.logic import inline
from functions.logic.clock import utcnow
from functions.logic.function_ports import InlineReplayPort, KeyOwnerPort
from functions.logic.ports import InlineCreditPort
from functions.models import RowResult
from functions.observability import logger
from functions.settings import StreamSettings, load

PATHS: frozenset[str] = frozenset(inline.KINDS)


@dataclass(frozen=True)
class Deps:
    """What the stream function needs, built once per cold start: the credit store (balance, reservations), the
    account store (keys), the enrichment entry point, idempotency records and its settings. Tests pass fakes."""

    settings: StreamSettings
    credits: InlineCreditPort
    accounts: KeyOwnerPort
    enrich: Callable[[str, Sequence[str]], list[RowResult]]
    replay: InlineReplayPort | None = None  # idempotency records; None: Idempotency-Key is not supported

    @classmethod
    def from_settings(cls, settings: StreamSettings) -> Deps:
        """The real adapters."""
        sources = RefreshingSources(settings)

        def enrich(job_type: str, values: Sequence[str]) -> list[RowResult]:
            # An inline request cannot come back later: values a provider budget left unasked are timeouts.
            return settle_unasked(enrich_values(job_type, values, sources.current()))

        table = settings.jobs_table
        return cls(settings, CreditStore(table), AccountStore(table), enrich, InlineReplay(table))


def _enricher(ports: Deps, job_type: str, delay_ms: int) -> inline.Enrich:
    def run(values: Sequence[str]) -> list[RowResult]:
        if delay_ms:
            time.sleep(delay_ms / 1000 * len(values))
        return ports.enrich(job_type, values)

    return run


async def _account(request: Request, keys: KeyCheck) -> str:
    # API Gateway's authorizer, via the Web Adapter
    authorized = account_from_headers(request.headers)
    if authorized is not None:
        return authorized
    # Without the authorizer's context (the app on its own): the REST function's key check (functions/http/access.py).
    account_id: str = await anyio.to_thread.run_sync(keys.account_for, dict(request.headers))
    return account_id


class _Connection:
    """The client side of one stream: writes that report a closed connection, and a watch for the client leaving."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self.receive, self.send = receive, send
        self.gone = False
        # Cancelled when the client leaves: stops the enrichment, not the charge (which is shielded).
        self.scope = anyio.CancelScope()

    def leave(self) -> None:
        """The client is gone: stop everything in `scope`."""
        self.gone = True
        self.scope.cancel()

    async def message(self, message: Message) -> bool:
        """Send one ASGI message; False (and leave) when the connection is closed."""
        if self.gone:
            return False
        try:
            await self.send(message)
        except OSError:
            # ASGI 2.4 servers (and the local gateway) raise on a closed connection.
            self.leave()
            return False
        return True

    async def write(self, block: bytes) -> bool:
        """Send one SSE block."""
        return await self.message({"type": "http.response.body", "body": block, "more_body": True})

    async def watch(self) -> None:
        """Leave on `http.disconnect`: how ASGI 2.3 servers (uvicorn) report a client that closed."""
        while (await self.receive())["type"] != "http.disconnect":
            pass
        self.leave()


@dataclass(frozen=True)
class Money:
    """Who pays for a stream, under which request id, and what was reserved for it before it started."""

    account_id: str
    request_id: str
    reserved: int


class EventStreamResponse(Response):
    """Streams a plan's events; stops when the client leaves; charges once, only for what was sent."""

    media_type = "text/event-stream"

    def __init__(
        self,
        plan: inline.Plan,
        enrich: inline.Enrich,
        store: Any,
        settings: StreamSettings,
        money: Money,
        record: Callable[[bytes | None], None] | None = None,
    ) -> None:
        self.record = record  # called once at the end: the full transcript, or None when it was not completed
        self.status_code = 200
        self.background = None
        self.plan, self.enrich, self.store, self.settings, self.money = plan, enrich, store, settings, money
        self.account_id = money.account_id
        # No Content-Length: the body is chunked; no-cache and X-Accel-Buffering keep proxies from buffering it.
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer every input, settle, summarize; or stop when the client leaves and settle for what was sent."""
        client = _Connection(receive, send)
        transcript: list[bytes] = []

        async def write(block: bytes) -> bool:
            if self.record is not None:
                transcript.append(block)
            return await client.write(block)

        stream = inline.EventStream(
            self.plan,
            self.enrich,
            write,
            concurrency=self.settings.inline_concurrency,
            heartbeat_seconds=self.settings.inline_heartbeat_seconds,
        )
        charged: int | None = None
        started = time.monotonic()
        try:
            with client.scope:
                await client.message({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
                async with anyio.create_task_group() as group:
                    group.start_soon(client.watch)
                    await stream.run()
                    if not client.gone:
                        # Settled before the summary, so `credits_used` is what the ledger moved.
                        charged = await self._settle(stream.tally.credits)
                        await write(inline.done_event(self.plan.kind, self.plan.total, charged))
                        await write(inline.DONE)
                    group.cancel_scope.cancel()
        finally:
            completed = charged is not None and not client.gone
            if charged is None:
                charged = await self._settle(stream.tally.credits)
            if self.record is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self.record, b"".join(transcript) if completed else None)
            logger.info(
                "inline stream ended",
                account_id=self.account_id,
                request_id=self.money.request_id,
                reserved=self.money.reserved,
                type=self.plan.kind.type,
                inputs=self.plan.total,
                events=stream.tally.events,
                credits=charged,
                disconnected=client.gone,
                seconds=round(time.monotonic() - started, 3),
            )
        await client.message({"type": "http.response.body", "body": b"", "more_body": False})

    async def _settle(self, used: int) -> int:
        # Shielded: a disconnect cancels the stream, never the refund of what was not sent.
        m = self.money
        with anyio.CancelScope(shield=True):
            charged: int = await anyio.to_thread.run_sync(
                inline.settle, self.store, m.account_id, m.request_id, m.reserved, used, utcnow()
            )
        return charged


async def _bulk(request: Request, p: Deps, keys: KeyCheck) -> Response:
    settings = p.settings
    kind = inline.KINDS[request.url.path]
    account_id = await _account(request, keys)
    if request.query_params:
        name = sorted(request.query_params)[0]
        raise InputError(f"unknown query parameter `{name}`", code="unknown_parameter", parameter=name)
    items = inline.parse_items(kind, await request.body())
    plan = inline.plan_request(kind, items)
    enrich = _enricher(p, kind.type, settings.local_enrich_delay_ms)
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key.strip()) <= idempotency.MAX_KEY_LENGTH:
        raise InputError(
            f"Idempotency-Key must be 1 to {idempotency.MAX_KEY_LENGTH} characters", code="invalid_idempotency_key"
        )
    record: Callable[[bytes | None], None] | None = None
    if key and p.replay is not None:
        replay = p.replay
        fingerprint = idempotency.fingerprint(request.url.path, json.dumps(items, sort_keys=True))
        original = await anyio.to_thread.run_sync(replay.begin, account_id, key, fingerprint)
        if original is not None:  # the same request again: the first answer, not charged again
            return Response(original, media_type="text/event-stream", headers={"Idempotent-Replayed": "true"})

        def record(transcript: bytes | None) -> None:
            if transcript is None:
                replay.abandon(account_id, key)
            else:
                replay.finish(account_id, key, transcript)

    request_id = str(request.scope["bulkapi.request_id"])
    try:
        reserved = await anyio.to_thread.run_sync(
            inline.reserve, plan, p.credits, account_id, request_id, enrich, utcnow()
        )
    except Exception:
        if record is not None:
            await anyio.to_thread.run_sync(record, None)
        raise
    return EventStreamResponse(plan, enrich, p.credits, settings, Money(account_id, request_id, reserved), record)


async def _health(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, BulkApiError)
    if exc.status_code >= 500:
        logger.exception("request failed", error=exc.code)
    status, body, headers = answers.error_answer(exc)
    return JSONResponse(body, status_code=status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "route_not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(error_body(code, f"no route {request.method} {request.url.path}"), status_code=exc.status_code)


def create_app(deps: Deps) -> ASGIApp:
    """The ASGI app composed with its dependencies; tests pass fakes."""
    # Each stream asks for its key (not remembered: a stream is long, a lookup is one read).
    keys = KeyCheck(deps.accounts.account_for_key, ttl_seconds=0)

    async def endpoint(request: Request) -> Response:
        return await _bulk(request, deps, keys)

    routes = [Route(path, endpoint, methods=["POST"]) for path in sorted(PATHS)]
    # The Lambda Web Adapter's readiness check (AWS_LWA_READINESS_CHECK_PATH).
    routes.append(Route("/api/health", _health, methods=["GET"]))
    starlette = Starlette(routes=routes, exception_handlers={BulkApiError: _api_error, HTTPException: _http_error})
    return _with_cors(starlette, deps.settings.cors_origins)


def _with_cors(inner: Starlette, cors_origins: str) -> ASGIApp:
    """Names the request (`X-Request-Id` on every answer) and adds the CORS headers for an allowed Origin."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = answers.request_id_from_context_header(headers)
        scope["bulkapi.request_id"] = request_id
        extra = answers.answer_headers(request_id, headers.get("origin"), cors_origins)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
                message = {**message, "headers": [*message.get("headers", []), *encoded]}
            await send(message)

        await inner(scope, receive, send_with_headers)

    return app


def app_from_environment() -> ASGIApp:
    """uvicorn's factory (functions/run.sh, `--factory`): the app composed from this process's environment, which
    is the function's own, once per cold start."""
    return create_app(Deps.from_settings(load(StreamSettings)))
