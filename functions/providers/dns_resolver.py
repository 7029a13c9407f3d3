"""DNS: the mail and web facts of a domain, asked of a recursive resolver through c-ares (an online provider).

Per domain five questions go out, concurrently: MX, A, AAAA and TXT of the domain, TXT of `_dmarc.<domain>`.
Names are queried as given (absolute, already IDNA ASCII), with no search list. The columns:

- `dns_exists`: False when the domain is NXDOMAIN; every other column is then empty (this is an answer, not an error);
- `mx`: the MX hosts, lower-case without the final dot, by preference then name, joined with ";"; None when none;
- `mx_null`: the domain publishes a null MX (`0 .`, RFC 7505): it accepts no mail; such a record is not in `mx`;
- `has_a`, `has_aaaa`: the name has an IPv4 / IPv6 address (after CNAMEs);
- `spf`: the TXT record that is `v=spf1 ...`, its strings joined with no separator;
- `dmarc`: the TXT record at `_dmarc.<domain>` whose first tag is `v=DMARC1` (NXDOMAIN there: no DMARC);
- `dmarc_policy`: its `p=` tag lower-cased, when it is none, quarantine or reject.

Several SPF (or DMARC) records are a misconfiguration that receivers reject; the column shows the first in sorted order.

A record type the name does not have (NoAnswer) is simply absent. Failures, retried up to `attempts` times with a
small backoff, end as `ProviderError(code)` from `lookup` and as `ProviderFailure(code)` from `lookup_many`:

- `dns_timeout`: no answer within the timeout;
- `dns_error`: SERVFAIL, REFUSED or another refusing rcode, or no nameserver reachable; also any unexpected failure;
- `dns_bad_response`: an answer that cannot be parsed or does not match the question (over TCP; over UDP c-ares
  drops such datagrams as possibly spoofed and keeps waiting, so they end as `dns_timeout`).

Nameservers are "ip" or "ip:port" ("[ipv6]:port"); None reads /etc/resolv.conf (its search list is not used).
`queries_per_second` spaces every DNS query of one provider instance; build one per process to share the budget.
The questions of a batch run on one asyncio event loop, at most `concurrency` domains' questions at once;
`lookup_many` is synchronous and runs that loop itself.

Why c-ares (pycares) and not dnspython's asyncio resolver: a question's CPU, not the resolver's wait, limited a
batch. Measured on 5,000 questions against a local stub: dnspython's resolver spent about 440 us of CPU per question
(a socket per question, the message built and parsed in Python), c-ares about 100 us (one socket, C parsing, C
timeouts and TCP fallback). c-ares keeps what it learns for the records' TTL (at most an hour) per process, as any
stub resolver with a cache does; the answer cache (functions/enrich/online.py) is unchanged.
dnspython still checks nameserver entries and names before anything is sent.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import dns.inet
import dns.name
import dns.nameserver
import pycares

from functions.enrich._common import ProviderFailure
from functions.enrich.facts import DnsFacts
from functions.providers.http_client import ProviderError, RateLimiter

logger = logging.getLogger(__name__)

DNS_TIMEOUT = "dns_timeout"
DNS_ERROR = "dns_error"
DNS_BAD_RESPONSE = "dns_bad_response"

BACKOFF = 0.2
MAX_BACKOFF = 2.0
# c-ares sends EDNS with a payload of 1232: large enough for SPF and DMARC TXT answers, small enough not to be
# fragmented (DNS flag day 2020).
EDNS_PAYLOAD = 1232

_MX, _A, _AAAA, _TXT = pycares.QUERY_TYPE_MX, pycares.QUERY_TYPE_A, pycares.QUERY_TYPE_AAAA, pycares.QUERY_TYPE_TXT
# Which name each question asks about (the domain, or its DMARC name) and the type asked.
_QUESTIONS: tuple[tuple[bool, int], ...] = ((False, _MX), (False, _A), (False, _AAAA), (False, _TXT), (True, _TXT))
_TYPE_NAMES = {_MX: "MX", _A: "A", _AAAA: "AAAA", _TXT: "TXT"}
_DMARC_POLICIES = frozenset({"none", "quarantine", "reject"})
# c-ares' outcomes that are answers, and the codes of its failures (every other failure is `dns_error`).
_NO_SUCH_NAME = pycares.errno.ARES_ENOTFOUND
_NO_ANSWER = pycares.errno.ARES_ENODATA
_FAILURES = {pycares.errno.ARES_ETIMEOUT: DNS_TIMEOUT, pycares.errno.ARES_EBADRESP: DNS_BAD_RESPONSE}


class _NoSuchName:
    """The answer NXDOMAIN for one question."""


NXDOMAIN = _NoSuchName()
# The records of the type asked (after CNAMEs), None when the name has none, or NXDOMAIN.
_Answer = list[Any] | None | _NoSuchName


def parse_nameserver(entry: str, default_port: int = 53) -> dns.nameserver.Do53Nameserver:
    """A nameserver from "ip", "ip:port", "ipv6" or "[ipv6]:port"; raises ValueError for anything else."""
    text = entry.strip()
    if text.startswith("[") and "]:" in text:
        host, _, port = text[1:].partition("]:")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text.strip("[]"), ""
    if not dns.inet.is_address(host):
        raise ValueError(f"not a nameserver address: {entry!r}")
    return dns.nameserver.Do53Nameserver(host, int(port) if port else default_port)


def _server(nameserver: dns.nameserver.Do53Nameserver) -> str:
    # c-ares' server syntax: "ip:port", "[ipv6]:port".
    host = f"[{nameserver.address}]" if ":" in nameserver.address else nameserver.address
    return f"{host}:{nameserver.port}"


def _texts(records: list[Any] | None) -> list[str]:
    # A TXT record is a list of strings of at most 255 bytes (long SPF records are split); c-ares joins them.
    found = {r.data for r in records or () if isinstance(r, pycares.TXTRecordData)}
    return sorted(r.decode("utf-8", errors="replace") for r in found)


def _spf(texts: Sequence[str]) -> str | None:
    return next((t for t in texts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")), None)


def _dmarc(texts: Sequence[str]) -> tuple[str | None, str | None]:
    for text in texts:
        tags = [tag.partition("=") for tag in (part.strip() for part in text.split(";")) if tag]
        if tags and tags[0][0].strip() == "v" and tags[0][2].strip() == "DMARC1":
            policy = next((value.strip().lower() for key, _, value in tags if key.strip() == "p"), None)
            return text, policy if policy in _DMARC_POLICIES else None
    return None, None


def _mx(records: list[Any] | None) -> tuple[str | None, bool]:
    # The same record twice is one record (an RRset is a set); the root ("" or ".") is a null MX (RFC 7505).
    found = {(r.priority, r.exchange.rstrip(".").lower()) for r in records or () if isinstance(r, pycares.MXRecordData)}
    hosts = sorted((preference, host) for preference, host in found if host)
    null = any(not host for _, host in found)
    return ";".join(host for _, host in hosts) or None, null


def summarize(answers: Sequence[_Answer]) -> DnsFacts:
    """The facts of a domain from the answers to its five questions, in `_QUESTIONS` order."""
    # NXDOMAIN for a question about the domain itself: it does not exist; for its `_dmarc` name: no DMARC.
    if any(answer is NXDOMAIN for answer in answers[:4]):
        return DnsFacts(dns_exists=False)
    records = [None if isinstance(answer, _NoSuchName) else answer for answer in answers]
    mx_hosts, mx_null = _mx(records[0])
    dmarc, policy = _dmarc(_texts(records[4]))
    return DnsFacts(
        dns_exists=True,
        mx=mx_hosts,
        mx_null=mx_null,
        has_a=bool(records[1]),
        has_aaaa=bool(records[2]),
        spf=_spf(_texts(records[3])),
        dmarc=dmarc,
        dmarc_policy=policy,
    )


class DnsProvider:
    """MX, A, AAAA, SPF and DMARC of domains from a recursive resolver, with retries, concurrency and a rate."""

    def __init__(
        self,
        nameservers: Sequence[str] | None = None,
        *,
        port: int = 53,
        timeout: float = 2.0,
        attempts: int = 2,
        concurrency: int = 16,
        queries_per_second: float | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        if attempts < 1 or concurrency < 1 or timeout <= 0:
            raise ValueError("attempts and concurrency must be at least 1, timeout positive")
        # None: the system's nameservers (/etc/resolv.conf); queries never use its search list.
        servers = [_server(parse_nameserver(entry, port)) for entry in nameservers] if nameservers is not None else None
        # One try per nameserver and question: retries are ours, with the injectable sleep and backoff.
        self._channel = pycares.Channel(
            servers=servers,
            udp_port=port,
            tcp_port=port,
            timeout=timeout,
            tries=1,
            flags=pycares.ARES_FLAG_EDNS | pycares.ARES_FLAG_NOSEARCH,
        )
        self._attempts = attempts
        # `concurrency` counts domains: their five questions go out together.
        self._in_flight = concurrency * len(_QUESTIONS)
        # None: asyncio.sleep; tests inject a (synchronous) recorder.
        self._sleep = sleep
        self._limiter = RateLimiter(queries_per_second * 60) if queries_per_second else None

    def lookup(self, domain: str) -> DnsFacts:
        """The facts of one domain; raises ProviderError when the resolver cannot answer."""
        result = self._gather([domain])[0]
        if isinstance(result, ProviderError):
            raise result
        return result

    def lookup_many(self, domains: Sequence[str]) -> list[DnsFacts | ProviderFailure]:
        """One answer per domain, in order; at most `concurrency` domains' questions are in flight at once."""
        answers: list[DnsFacts | ProviderFailure] = []
        for domain, result in zip(domains, self._gather(domains), strict=True):
            if isinstance(result, ProviderError):
                logger.warning("dns lookup of %s failed: %s", domain, result)
                answers.append(ProviderFailure(result.code))
            else:
                answers.append(result)
        return answers

    def _gather(self, domains: Sequence[str]) -> list[DnsFacts | ProviderError]:
        if not domains:
            return []
        answers = _run(self._ask_all(domains))
        size = len(_QUESTIONS)
        return [self._facts(answers[k * size : (k + 1) * size]) for k in range(len(domains))]

    @staticmethod
    def _facts(answers: Sequence[_Answer | ProviderError]) -> DnsFacts | ProviderError:
        # A domain is answered only when all its questions are: a missing MX must not be a lost MX answer.
        error = next((a for a in answers if isinstance(a, ProviderError)), None)
        if error is not None:
            return error
        try:
            return summarize([a for a in answers if not isinstance(a, ProviderError)])
        except Exception as exc:
            logger.exception("dns answers could not be summarized")
            return ProviderError(DNS_ERROR, type(exc).__name__)

    async def _ask_all(self, domains: Sequence[str]) -> list[_Answer | ProviderError]:
        # One event loop; c-ares' own thread sends, waits and parses, and hands each answer back to the loop.
        # A fixed number of askers take the questions in turn: no task and no semaphore waiter per question.
        names = [self._checked(domain) for domain in domains]
        questions = [(name, index) for name in names for index in range(len(_QUESTIONS))]
        answers: list[_Answer | ProviderError] = [None] * len(questions)
        pending = iter(enumerate(questions))

        async def asker() -> None:
            for position, question in pending:
                answers[position] = await self._answer(question)

        await asyncio.gather(*(asker() for _ in range(min(self._in_flight, len(questions)))))
        return answers

    @staticmethod
    def _checked(domain: str) -> str | ProviderError:
        # dnspython checks the name (label lengths, empty labels) before c-ares is asked anything.
        try:
            return dns.name.from_text(domain).to_text(omit_final_dot=True)
        except Exception as exc:
            logger.exception("dns question crashed")
            return ProviderError(DNS_ERROR, type(exc).__name__)

    async def _pause(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._sleep is None:
            await asyncio.sleep(seconds)
            return
        result = self._sleep(seconds)
        if inspect.isawaitable(result):
            await result

    async def _answer(self, question: tuple[str | ProviderError, int]) -> _Answer | ProviderError:
        name, index = question
        if isinstance(name, ProviderError):
            return name
        dmarc, rdtype = _QUESTIONS[index]
        try:
            return await self._resolve(f"_dmarc.{name}" if dmarc else name, rdtype)
        except ProviderError as exc:
            return exc
        except Exception as exc:
            logger.exception("dns question crashed")
            return ProviderError(DNS_ERROR, type(exc).__name__)

    async def _resolve(self, name: str, rdtype: int) -> _Answer:
        error = ProviderError(DNS_ERROR)
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                delay = min(BACKOFF * 2 ** (attempt - 2), MAX_BACKOFF)
                logger.info("dns: retrying %s %s after %s (%.2fs)", name, _TYPE_NAMES[rdtype], error.code, delay)
                await self._pause(delay)
            if self._limiter is not None:
                await self._pause(self._limiter.reserve())
            result, status = await self._query(name, rdtype)
            if status is None:
                return [r.data for r in result.answer if r.type == rdtype]
            if status == _NO_SUCH_NAME:
                return NXDOMAIN
            if status == _NO_ANSWER:
                return None
            error = ProviderError(_FAILURES.get(status, DNS_ERROR), str(pycares.errno.strerror(status)))
        raise error

    def _query(self, name: str, rdtype: int) -> asyncio.Future[tuple[Any, int | None]]:
        # c-ares calls back on its own thread: the answer is handed to this loop, unless the question was abandoned.
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Any, int | None]] = loop.create_future()

        def settle(result: Any, status: int | None) -> None:
            if not future.done():
                future.set_result((result, status))

        def done(result: Any, status: int | None) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(settle, result, status)

        self._channel.query(name, rdtype, callback=done)
        return future


T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from synchronous code, also from a thread that already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dns") as pool:
        return pool.submit(asyncio.run, coroutine).result()
