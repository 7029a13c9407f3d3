"""Stands in for API Gateway: uvicorn serves a Starlette app that routes each request as the deployed API does.

The streamed routes (POST on the inline bulk paths) go to the stream function (local/stream_function.py forwards
each to one of its processes, as the Lambda Web Adapter does in AWS). Every other request becomes the REST proxy
event (`proxy_event`) and is handed to the api function's handler on a thread of its own, so no request waits for
another (local/lambdas.py gives each concurrent invocation its own execution environment).
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
import uuid
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from functions.errors import error_body
from functions.http.access import REQUEST_CONTEXT_HEADER
from local.gateway_authorizers import LocalAuthorizers, request_context_header
from local.lambdas import InvocationError, Invoker

# API Gateway's payload limit.
MAX_REQUEST_BYTES = 10 * 1024 * 1024
TEXT_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/plain")
# Every method reaches the API function, which answers 405 in the API's error shape for one a route does not take.
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY"]
# Requests the api function may serve at once (each on its own thread and execution environment); more wait.
API_CONCURRENCY = 64
# Where the authorizing middleware leaves the authorizer's context for the route (an ASGI scope extension key).
AUTHORIZER_SCOPE_KEY = "bulkapi.authorizer"


def proxy_event(
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    stage: str = "local",
) -> dict[str, Any]:
    """The API Gateway REST (v1) proxy event for a request."""
    multi_query = parse_qs(query, keep_blank_values=True)
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    single = {name: values[-1] for name, values in multi_headers.items()}
    content_type = single.get("content-type", "")
    is_text = not body or content_type.split(";")[0].strip() in TEXT_TYPES
    if is_text and body:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            is_text = False  # API Gateway passes a body that is not UTF-8 base64-encoded
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": single,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": single.get("user-agent", "")},
            "accountId": "123456789012",
            "apiId": "local",
        },
        "body": (body.decode("utf-8") if is_text else base64.b64encode(body).decode()) if body else None,
        "isBase64Encoded": bool(body) and not is_text,
    }


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status)


class _BodyTooLarge(Exception):
    pass


def _limit_body(app: ASGIApp, limit: int) -> ASGIApp:
    """API Gateway refuses bodies over its payload limit, chunked or not, before any function runs."""

    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        too_large = _error(413, "request_too_large", f"requests are limited to {limit} bytes")
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await too_large(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise _BodyTooLarge
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, counting_receive, watching_send)
        except _BodyTooLarge:
            if started:
                raise
            await too_large(scope, receive, send)

    return limited


class _AsgiEndpoint:
    """An ASGI app as a route's endpoint: Starlette would take a bare function for a request -> response handler."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        context = scope.get(AUTHORIZER_SCOPE_KEY)
        if context is not None:
            # As the Lambda Web Adapter does: the event's request context, with the authorizer's, as a header.
            client = scope.get("client")
            request_context = {
                "requestId": str(uuid.uuid4()),
                "stage": "local",
                "path": f"/local{scope['path']}",
                "httpMethod": scope["method"],
                "identity": {"sourceIp": client[0] if client else "127.0.0.1"},
                "authorizer": context,
            }
            name, value = request_context_header(request_context)
            scope = {**scope, "headers": [*scope["headers"], (name.encode("latin-1"), value.encode("latin-1"))]}
        await self.app(scope, receive, send)


class Gateway:
    """Serves the API over HTTP on host:port with uvicorn; `asgi_paths` (POST) go to the ASGI app."""

    def __init__(
        self,
        host: str,
        port: int,
        invoker: Invoker,
        api_function: str,
        asgi_app: ASGIApp | None = None,
        asgi_paths: Collection[str] = (),
        authorizers: LocalAuthorizers | None = None,
    ) -> None:
        self.invoker = invoker
        # API Gateway's Lambda authorizers, from the template (local/gateway_authorizers.py); None: every request goes
        # through.
        self.authorizers = authorizers
        self.api_function = api_function
        self.pool = ThreadPoolExecutor(API_CONCURRENCY, thread_name_prefix="api")
        routes = []
        if asgi_app is not None:
            routes = [Route(path, _AsgiEndpoint(asgi_app), methods=["POST"]) for path in sorted(asgi_paths)]
        routes.append(Route("/{path:path}", self._proxy, methods=METHODS))
        self.app = Starlette(routes=routes, exception_handlers={Exception: self._crashed})
        # Bound here, so the port is known before start (port 0 picks a free one).
        self.socket = socket.create_server((host, port), backlog=2048)
        config = uvicorn.Config(
            _limit_body(self._authorizing(self.app), MAX_REQUEST_BYTES),
            log_config=None,  # leave the process's logging (Powertools) alone
            log_level="warning",
            access_log=False,
            lifespan="off",
            backlog=2048,
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self.socket.getsockname()[1])

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; returns once uvicorn accepts connections."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the local API server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving: open streams get a moment to finish, then are cut."""
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.socket.close()

    def _authorizing(self, app: ASGIApp) -> ASGIApp:
        """Before routing, as API Gateway: the method's authorizer decides, or the gateway answers itself."""

        async def authorized(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            # Only the gateway says what the authorizer decided: a client's own request-context header is dropped.
            own = REQUEST_CONTEXT_HEADER.encode("latin-1")
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != own]}
            if self.authorizers is not None:
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
                client = scope.get("client")
                outcome = await asyncio.get_running_loop().run_in_executor(
                    self.pool,
                    self.authorizers.authorize,
                    scope["method"],
                    scope["path"],
                    headers,
                    client[0] if client else "127.0.0.1",
                    self.invoker.invoke,
                )
                if outcome.answer is not None:
                    status, answer_headers, body = outcome.answer
                    await Response(body, status_code=status, headers=answer_headers)(scope, receive, send)
                    return
                scope[AUTHORIZER_SCOPE_KEY] = outcome.context
            await app(scope, receive, send)

        return authorized

    async def _proxy(self, request: Request) -> Response:
        """One request through the api function, as its REST proxy event; the handler runs on a pool thread."""
        event = proxy_event(
            request.method,
            request.url.path,
            request.url.query,
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
            await request.body(),
            request.client.host if request.client else "127.0.0.1",
        )
        context = request.scope.get(AUTHORIZER_SCOPE_KEY)
        if context is not None:
            event["requestContext"]["authorizer"] = context
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(self.pool, self.invoker.invoke, self.api_function, event)
        except InvocationError as exc:
            return _error(502, "internal_error", exc.error_message)
        return self._response(response)

    @staticmethod
    def _response(response: dict[str, Any]) -> Response:
        headers = {k: str(v) for k, v in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(str(v) for v in values)
        for hop in [h for h in headers if h.lower() in ("content-length", "connection", "transfer-encoding")]:
            del headers[hop]
        raw = response.get("body") or ""
        payload = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode("utf-8")
        return Response(payload, status_code=int(response.get("statusCode", 200)), headers=headers)

    @staticmethod
    async def _crashed(_: Request, exc: Exception) -> Response:
        # A function that crashes before answering is API Gateway's 502, with the project's error shape.
        return _error(502, "internal_error", str(exc) or type(exc).__name__)
