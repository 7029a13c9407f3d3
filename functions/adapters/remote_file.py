"""Remote files: fetch a customer's CSV from a URL they gave, streaming it into the bucket, without SSRF.

Every hop (the URL, then each redirect, at most MAX_REDIRECTS) is checked and its name resolved once by
`functions/netguard.py`'s webhook rules: deployed, https to public addresses only; locally (allow_private), also http
to `localhost`, `127.0.0.1` and `[::1]` written so. The connection goes to exactly the address that was checked, so
neither a redirect nor a DNS answer that changes between check and connect reaches a private network. The body is
written to S3 as it arrives (a multipart upload past 8 MiB, aborted on failure), capped in size and in time.
"""

from __future__ import annotations

import http.client
import time
from urllib.parse import urljoin, urlsplit

from functions.adapters.blobs import BlobStore
from functions.errors import FetchError
from functions.logic.urls import UrlError, clean_url
from functions.netguard import (
    LOOPBACK_HOSTS,
    BlockedTargetError,
    PinnedHTTPConnection,
    PinnedHTTPSConnection,
    resolve_webhook_target,
)
from functions.observability import logger

MAX_REDIRECTS = 5
CHUNK = 256 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})


def check_hop(url: str, allow_private: bool) -> tuple[str, str, int, str]:
    """One hop, checked like the URL the job was created with (functions/logic/urls.py: no user info, no whitespace or
    control characters) and resolved once: the URL as requested, its host, port and address. Raises FetchError
    (fetch_blocked, fetch_failed)."""
    try:
        url = clean_url(url, schemes=("http", "https"))
    except UrlError as exc:
        raise FetchError(
            f"the URL may not be fetched: {exc}", code="fetch_blocked" if exc.blocked else "fetch_failed"
        ) from exc
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    if parts.scheme == "http" and not (allow_private and host in LOOPBACK_HOSTS):
        raise FetchError("only https URLs are fetched", code="fetch_blocked")
    try:
        address = resolve_webhook_target(host, port, allow_private)
    except BlockedTargetError as exc:
        raise FetchError(f"the URL may not be fetched: {exc}", code="fetch_blocked") from exc
    except OSError as exc:
        raise FetchError(f"the host {host} does not resolve ({exc})", code="fetch_failed") from exc
    return url, host, port, address


class RemoteFiles:
    """Fetches URLs into the bucket under one deployment's rules.

    `timeout_seconds` bounds the whole fetch, every hop included: each socket operation (connect, TLS handshake,
    request, status line, every header line, every read of the body) gets only the time left (functions/netguard.py),
    so neither a server that trickles its headers nor one that sends a byte every few seconds holds a fetch past it.
    `socket_timeout` bounds a single operation (a server that goes silent).
    """

    def __init__(
        self, blobs: BlobStore, *, allow_private: bool, timeout_seconds: float, socket_timeout: float = 30.0
    ) -> None:
        self.blobs = blobs
        self.allow_private = allow_private
        self.timeout = timeout_seconds
        self.socket_timeout = min(socket_timeout, timeout_seconds)

    def fetch(self, url: str, key: str, *, max_bytes: int) -> int:
        """Stream the file at `url` into `key`; the bytes stored. Raises FetchError with the reason's code."""
        deadline = time.monotonic() + self.timeout
        for _ in range(MAX_REDIRECTS + 1):
            url, conn, response = self._open(url, deadline)
            try:
                location = response.getheader("location") if response.status in REDIRECTS else None
                if location:
                    url = urljoin(url, location)
                    continue
                if response.status != 200:
                    raise FetchError(f"the server answered {response.status} {response.reason}", code="fetch_failed")
                return self._store(response, key, max_bytes, deadline)
            finally:
                conn.close()
        raise FetchError(f"more than {MAX_REDIRECTS} redirects", code="fetch_failed")

    def _late(self) -> FetchError:
        return FetchError(f"the download took longer than {self.timeout:g} s", code="fetch_failed")

    def _open(self, url: str, deadline: float) -> tuple[str, http.client.HTTPConnection, http.client.HTTPResponse]:
        url, host, port, address = check_hop(url, self.allow_private)
        parts = urlsplit(url)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = PinnedHTTPSConnection(host, address, port, self.socket_timeout, deadline=deadline)
        else:
            conn = PinnedHTTPConnection(host, address, port, self.socket_timeout, deadline=deadline)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("GET", path, headers={"user-agent": "bulkapi-fetch/1", "accept-encoding": "identity"})
            return url, conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            if time.monotonic() >= deadline:
                raise self._late() from exc
            raise FetchError(f"{host} could not be reached: {type(exc).__name__}: {exc}", code="fetch_failed") from exc

    def _store(self, response: http.client.HTTPResponse, key: str, max_bytes: int, deadline: float) -> int:
        declared = response.getheader("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise _too_large(max_bytes)
        writer = self.blobs.writer(key)
        size = 0
        try:
            # Every socket read inside is bounded by the time left (netguard's deadline sockets), however the
            # server spaces its bytes; past the deadline a read raises TimeoutError.
            while chunk := response.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(max_bytes)
                writer.write(chunk)
            if time.monotonic() > deadline:
                raise self._late()
            writer.close()
        except (OSError, http.client.HTTPException) as exc:
            writer.abort()
            if time.monotonic() >= deadline:
                raise self._late() from exc
            raise FetchError(f"the download broke off: {type(exc).__name__}: {exc}", code="fetch_failed") from exc
        except BaseException:
            writer.abort()
            raise
        logger.info("remote file stored", key=key, bytes=size)
        return size


def _too_large(max_bytes: int) -> FetchError:
    return FetchError(f"the file is larger than {max_bytes} bytes", code="fetch_too_large", max_bytes=max_bytes)
