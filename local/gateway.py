"""A small HTTP server standing in for API Gateway: each request becomes the REST proxy event the API gets in AWS."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
import uuid
from collections.abc import Collection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from functions.auth import REQUEST_CONTEXT_HEADER
from local.authorizer import LocalAuthorizers, request_context_header
from local.lambdas import InvocationError, Invoker

# API Gateway's payload limit.
MAX_REQUEST_BYTES = 10 * 1024 * 1024
TEXT_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/plain")


def proxy_event(
    method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str, stage: str = "local"
) -> dict[str, Any]:
    """The API Gateway REST (v1) proxy event for a request."""
    url = urlsplit(raw_path)
    multi_query = parse_qs(url.query, keep_blank_values=True)
    content_type = headers.get("Content-Type", headers.get("content-type", ""))
    is_text = not body or content_type.split(";")[0].strip() in TEXT_TYPES
    return {
        "resource": "/{proxy+}",
        "path": url.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": url.path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/{stage}{url.path}",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent", "")},
            "accountId": "123456789012",
            "apiId": "local",
        },
        "body": (body.decode("utf-8") if is_text else base64.b64encode(body).decode()) if body else None,
        "isBase64Encoded": bool(body) and not is_text,
    }


class AsgiExchange:
    """One request through an ASGI app on the handler thread's own event loop, each body chunk written as it comes.

    This is what the Lambda Web Adapter does with response streaming in AWS, minus the hops: the streamed routes
    are not serialized by the gateway's lock (they do not use the Powertools resolver's module state).
    """

    def __init__(
        self, request: BaseHTTPRequestHandler, body: bytes, headers: list[tuple[str, str]] | None = None
    ) -> None:
        self.request = request
        self.body: bytes | None = body
        # The request's headers as the app gets them (default: as the client sent them).
        self.headers = headers if headers is not None else list(request.headers.items())
        self.chunked = False
        self.started = False
        self.gone: asyncio.Event | None = None

    def scope(self) -> dict[str, Any]:
        """The ASGI HTTP scope; spec 2.4: a write to a closed connection raises OSError."""
        url = urlsplit(self.request.path)
        server = self.request.server.server_address
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": self.request.command,
            "scheme": "http",
            "path": url.path,
            "raw_path": url.path.encode(),
            "query_string": url.query.encode(),
            "root_path": "",
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers],
            "client": tuple(self.request.client_address[:2]),
            "server": tuple(server[:2]) if isinstance(server, tuple) else None,
        }

    async def run(self, app: Any) -> None:
        """Call the app; a crash before the response started is a 502 like any other handler error."""
        self.gone = asyncio.Event()
        loop = asyncio.get_running_loop()
        sock = self.request.connection
        try:
            await app(self.scope(), self.receive, self.send)
        except Exception as exc:
            if self.started:
                raise
            message = json.dumps({"error": "internal_error", "message": str(exc)}).encode()
            Gateway._write(self.request, 502, {"Content-Type": "application/json"}, message)
        finally:
            loop.remove_reader(sock)

    async def receive(self) -> dict[str, Any]:
        """The body once, then wait for the client to close the connection."""
        if self.body is not None:
            body, self.body = self.body, None
            return {"type": "http.request", "body": body, "more_body": False}
        assert self.gone is not None
        sock = self.request.connection
        loop = asyncio.get_running_loop()

        def readable() -> None:
            # Readable with nothing to read is the peer's FIN: the client left. Data (a pipelined request) is left
            # for the next request; either way stop watching so the loop does not spin on it.
            loop.remove_reader(sock)
            try:
                closed = not sock.recv(1, socket.MSG_PEEK)
            except OSError:
                closed = True
            if closed and self.gone is not None:
                self.gone.set()

        loop.add_reader(sock, readable)
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        """Write the status and headers, then each body chunk (chunked unless the app gave a Content-Length)."""
        try:
            if message["type"] == "http.response.start":
                self.started = True
                headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])]
                self.chunked = not any(k.lower() == "content-length" for k, _ in headers)
                self.request.send_response(int(message["status"]))
                for name, value in headers:
                    self.request.send_header(name, value)
                if self.chunked:
                    self.request.send_header("Transfer-Encoding", "chunked")
                self.request.end_headers()
            elif message["type"] == "http.response.body":
                data = bytes(message.get("body", b""))
                more = bool(message.get("more_body", False))
                if self.chunked:
                    data = (b"%x\r\n%s\r\n" % (len(data), data) if data else b"") + (b"" if more else b"0\r\n\r\n")
                if data:
                    self.request.wfile.write(data)
        except OSError:
            if self.gone is not None:
                self.gone.set()
            self.request.close_connection = True
            raise


class Gateway:
    """Serves the API function over HTTP on host:port; `asgi_paths` go to the ASGI app (the streamed routes)."""

    def __init__(
        self,
        host: str,
        port: int,
        invoker: Invoker,
        api_function: str,
        asgi_app: Any = None,
        asgi_paths: Collection[str] = (),
        authorizers: LocalAuthorizers | None = None,
    ) -> None:
        self.invoker = invoker
        # API Gateway's Lambda authorizers, from the template (local/authorizer.py); None: every request goes through.
        self.authorizers = authorizers
        self.api_function = api_function
        self.asgi_app = asgi_app
        self.asgi_paths = frozenset(asgi_paths)
        # The Powertools resolver keeps the current request on a module-level app: one request at a time,
        # as one Lambda execution environment would.
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                gateway.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self.server.server_address[1])

    def start(self) -> None:
        """Start serving."""
        self.thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        """Turn one HTTP request into a proxy event, invoke the API, write its answer."""
        length = int(request.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            self._write(
                request,
                413,
                {"Content-Type": "application/json"},
                json.dumps(
                    {"error": "request_too_large", "message": f"requests are limited to {MAX_REQUEST_BYTES} bytes"}
                ).encode(),
            )
            request.close_connection = True
            return
        body = request.rfile.read(length) if length else b""
        # Only the gateway says what the authorizer decided: a client's own request-context header is dropped.
        headers = {k: v for k, v in request.headers.items() if k.lower() != REQUEST_CONTEXT_HEADER}
        event = proxy_event(request.command, request.path, headers, body, request.client_address[0])
        if self.authorizers is not None:
            outcome = self.authorizers.authorize(
                request.command, event["path"], headers, request.client_address[0], self._invoke_locked
            )
            if outcome.answer is not None:
                self._write(request, *outcome.answer)
                return
            if outcome.context is not None:
                event["requestContext"]["authorizer"] = outcome.context
        if self.asgi_app is not None and urlsplit(request.path).path in self.asgi_paths:
            # As the Lambda Web Adapter does: the event's request context travels as a header.
            app_headers = [*headers.items(), request_context_header(event["requestContext"])]
            asyncio.run(AsgiExchange(request, body, app_headers).run(self.asgi_app))
            return
        try:
            response = self._invoke_locked(self.api_function, event)
        except InvocationError as exc:
            self._write(
                request,
                502,
                {"Content-Type": "application/json"},
                json.dumps({"error": "internal_error", "message": exc.error_message}).encode(),
            )
            return
        out_headers = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            out_headers[name] = ", ".join(values)
        raw = response.get("body") or ""
        payload = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode("utf-8")
        self._write(request, int(response.get("statusCode", 200)), out_headers, payload)

    def _invoke_locked(self, function: str, event: dict[str, Any]) -> Any:
        # The handlers share Powertools' module state (the resolver, the logger's keys): one at a time.
        with self.lock:
            return self.invoker.invoke(function, event)

    @staticmethod
    def _write(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: bytes) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(payload)
