"""HTTP for online providers: timeouts, retries with backoff and Retry-After, JSON, bounded concurrency, rate limit.

Standard library only (urllib), so the Lambda layer grows by nothing. Every failure of one query ends as a
`ProviderError` whose code becomes that row's error code; `JsonClient.map_queries` turns it into a
`ProviderFailure` for the row, so a batch never fails because one lookup did.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from functions.enrich._common import ProviderFailure

logger = logging.getLogger(__name__)

PROVIDER_TIMEOUT = "provider_timeout"
PROVIDER_RATE_LIMITED = "provider_rate_limited"
PROVIDER_ERROR = "provider_error"
PROVIDER_BAD_RESPONSE = "provider_bad_response"

USER_AGENT = "bulkapi-enrichment/0.1"

T = TypeVar("T")


class ProviderError(Exception):
    """A provider lookup that failed for good; `code` is the row's error code."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


@dataclass(frozen=True)
class HttpPolicy:
    """How patient a provider client is: per-request timeout, attempts, backoff, concurrency and rate."""

    timeout: float = 5.0
    attempts: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    # A server asking for a longer pause than this gets this long; the batch must finish within the Lambda timeout.
    max_retry_after: float = 20.0
    concurrency: int = 8
    requests_per_minute: float | None = None
    max_body_bytes: int = 2_000_000


class RateLimiter:
    """Spaces requests evenly at a fixed rate across all threads that share it."""

    def __init__(
        self,
        requests_per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 60.0 / requests_per_minute
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0

    def reserve(self) -> float:
        """Take the next slot; the seconds until it comes (for callers that wait their own way, e.g. asyncio)."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self._interval
        return slot - now

    def acquire(self) -> None:
        """Wait for this caller's slot; slots are handed out in call order."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)


_LIMITERS: dict[tuple[str, float], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def shared_limiter(name: str, requests_per_minute: float) -> RateLimiter:
    """One limiter per provider and rate for the whole process, so consecutive batches share the budget."""
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get((name, requests_per_minute))
        if limiter is None:
            limiter = _LIMITERS[(name, requests_per_minute)] = RateLimiter(requests_per_minute)
        return limiter


class _Retry(Exception):
    """A transient failure of one attempt: the error to report if it was the last, and the server's wait hint."""

    def __init__(self, error: ProviderError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delta-seconds or an HTTP date); None when absent or unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


class JsonClient:
    """GETs JSON for one provider with retries, backoff, a per-request timeout and the provider's rate limit."""

    def __init__(
        self,
        name: str,
        policy: HttpPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.name = name
        self.policy = policy or HttpPolicy()
        self._sleep = sleep
        rate = self.policy.requests_per_minute
        self._limiter = limiter or (shared_limiter(name, rate) if rate else None)
        self._opener = urllib.request.build_opener()

    def get_json(self, url: str, headers: Mapping[str, str] | None = None, *, absent: Sequence[int] = ()) -> Any:
        """The parsed JSON answer of `url`; None when the status is one of `absent` (e.g. 404 meaning "none")."""
        if not url.startswith(("https://", "http://")):
            raise ProviderError(PROVIDER_ERROR, "only http(s) URLs are allowed")
        delay = 0.0
        for attempt in range(1, self.policy.attempts + 1):
            if delay:
                self._sleep(delay)
            try:
                return self._once(url, headers or {}, absent)
            except _Retry as retry:
                if attempt == self.policy.attempts:
                    raise retry.error from retry
                if retry.retry_after is not None:
                    delay = min(retry.retry_after, self.policy.max_retry_after)
                else:
                    delay = min(self.policy.backoff * 2 ** (attempt - 1), self.policy.max_backoff)
                logger.info("%s: retrying after %s (%.2fs)", self.name, retry.error.code, delay)
        raise ProviderError(PROVIDER_ERROR, "no attempts configured")

    def _once(self, url: str, headers: Mapping[str, str], absent: Sequence[int]) -> Any:
        if self._limiter is not None:
            self._limiter.acquire()
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in get_json
            url, headers={"User-Agent": USER_AGENT, "Accept": "application/json", **headers}
        )
        try:
            with self._opener.open(request, timeout=self.policy.timeout) as response:
                body: bytes = response.read(self.policy.max_body_bytes + 1)
        except urllib.error.HTTPError as exc:
            with exc:
                return self._status_error(exc.code, exc.headers.get("Retry-After"), absent)
        except TimeoutError as exc:
            raise _Retry(ProviderError(PROVIDER_TIMEOUT, "read timed out")) from exc
        except urllib.error.URLError as exc:
            code = PROVIDER_TIMEOUT if isinstance(exc.reason, TimeoutError) else PROVIDER_ERROR
            raise _Retry(ProviderError(code, str(exc.reason))) from exc
        except (http.client.HTTPException, OSError) as exc:
            # Connection reset or an answer cut short: transient as far as we can tell.
            raise _Retry(ProviderError(PROVIDER_ERROR, type(exc).__name__)) from exc
        if len(body) > self.policy.max_body_bytes:
            raise ProviderError(PROVIDER_BAD_RESPONSE, "answer too large")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ProviderError(PROVIDER_BAD_RESPONSE, "answer is not JSON") from exc

    def _status_error(self, status: int, retry_after: str | None, absent: Sequence[int]) -> None:
        if status in absent:
            return None
        if status == 429:
            raise _Retry(ProviderError(PROVIDER_RATE_LIMITED, "429"), retry_after_seconds(retry_after))
        if status == 408:
            raise _Retry(ProviderError(PROVIDER_TIMEOUT, "408"))
        if status >= 500:
            raise _Retry(ProviderError(PROVIDER_ERROR, str(status)), retry_after_seconds(retry_after))
        # 400/401/403...: our request or our key is wrong; asking again will not help.
        raise ProviderError(PROVIDER_ERROR, str(status))

    def map_queries(self, lookup: Callable[[str], T], queries: Sequence[str]) -> list[T | ProviderFailure]:
        """`lookup` for each query, at most `policy.concurrency` at once; failures become per-query answers."""

        def one(query: str) -> T | ProviderFailure:
            try:
                return lookup(query)
            except ProviderError as exc:
                logger.warning("%s lookup failed: %s", self.name, exc)
                return ProviderFailure(exc.code)
            except Exception:
                logger.exception("%s lookup crashed", self.name)
                return ProviderFailure(PROVIDER_ERROR)

        if not queries:
            return []
        workers = max(1, min(self.policy.concurrency, len(queries)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=self.name) as pool:
            return list(pool.map(one, queries))
