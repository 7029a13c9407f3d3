"""DNS: the mail and web facts of a domain, asked of a recursive resolver with dnspython (an online provider).

Per domain five questions go out, concurrently: MX, A, AAAA and TXT of the domain, TXT of `_dmarc.<domain>`.
Names are queried as given (absolute, already IDNA ASCII), with no search list and no cache. The columns:

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
- `dns_bad_response`: an answer that cannot be parsed or does not match the question (over TCP; over UDP dnspython
  drops such datagrams as possibly spoofed and keeps waiting, so they end as `dns_timeout`).

Nameservers are "ip" or "ip:port" ("[ipv6]:port"); None reads /etc/resolv.conf (its search list is not used).
`queries_per_second` spaces every DNS query of one provider instance; build one per process to share the budget.
The questions of a batch run on one asyncio event loop (dnspython's asyncio resolver), at most `concurrency` at
once; `lookup_many` is synchronous and runs that loop itself.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import dns.asyncresolver
import dns.exception
import dns.inet
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import dns.rrset
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.ANY.TXT import TXT

from functions.enrich._common import ProviderFailure
from functions.enrich.facts import DnsFacts
from functions.providers.http_client import ProviderError, RateLimiter

logger = logging.getLogger(__name__)

DNS_TIMEOUT = "dns_timeout"
DNS_ERROR = "dns_error"
DNS_BAD_RESPONSE = "dns_bad_response"

BACKOFF = 0.2
MAX_BACKOFF = 2.0
# Large enough for SPF and DMARC TXT answers, small enough not to be fragmented (DNS flag day 2020).
EDNS_PAYLOAD = 1232

_DMARC = dns.name.Name([b"_dmarc"])
# Which name each question asks about (the domain, or its DMARC name) and the type asked.
_QUESTIONS: tuple[tuple[bool, dns.rdatatype.RdataType], ...] = (
    (False, dns.rdatatype.MX),
    (False, dns.rdatatype.A),
    (False, dns.rdatatype.AAAA),
    (False, dns.rdatatype.TXT),
    (True, dns.rdatatype.TXT),
)
_DMARC_POLICIES = frozenset({"none", "quarantine", "reject"})


class _NoSuchName:
    """The answer NXDOMAIN for one question."""


NXDOMAIN = _NoSuchName()
_Answer = dns.rrset.RRset | None | _NoSuchName


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


def _texts(rrset: dns.rrset.RRset | None) -> list[str]:
    # A TXT record is a list of strings of at most 255 bytes; long SPF records are split across several.
    records = [b"".join(r.strings) for r in rrset or () if isinstance(r, TXT)]
    return sorted(r.decode("utf-8", errors="replace") for r in records)


def _spf(texts: Sequence[str]) -> str | None:
    return next((t for t in texts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")), None)


def _dmarc(texts: Sequence[str]) -> tuple[str | None, str | None]:
    for text in texts:
        tags = [tag.partition("=") for tag in (part.strip() for part in text.split(";")) if tag]
        if tags and tags[0][0].strip() == "v" and tags[0][2].strip() == "DMARC1":
            policy = next((value.strip().lower() for key, _, value in tags if key.strip() == "p"), None)
            return text, policy if policy in _DMARC_POLICIES else None
    return None, None


def _mx(rrset: dns.rrset.RRset | None) -> tuple[str | None, bool]:
    records = [r for r in rrset or () if isinstance(r, MX)]
    hosts = sorted(
        (r.preference, r.exchange.to_text(omit_final_dot=True).lower()) for r in records if r.exchange != dns.name.root
    )
    null = any(r.exchange == dns.name.root for r in records)
    return ";".join(host for _, host in hosts) or None, null


def summarize(answers: Sequence[_Answer]) -> DnsFacts:
    """The facts of a domain from the answers to its five questions, in `_QUESTIONS` order."""
    # NXDOMAIN for a question about the domain itself: it does not exist; for its `_dmarc` name: no DMARC.
    if any(answer is NXDOMAIN for answer in answers[:4]):
        return DnsFacts(dns_exists=False)
    rrsets = [None if isinstance(answer, _NoSuchName) else answer for answer in answers]
    mx_hosts, mx_null = _mx(rrsets[0])
    dmarc, policy = _dmarc(_texts(rrsets[4]))
    return DnsFacts(
        dns_exists=True,
        mx=mx_hosts,
        mx_null=mx_null,
        has_a=bool(rrsets[1]),
        has_aaaa=bool(rrsets[2]),
        spf=_spf(_texts(rrsets[3])),
        dmarc=dmarc,
        dmarc_policy=policy,
    )


def _failure_code(exc: dns.resolver.NoNameservers) -> str:
    # Each error is (nameserver, tcp, port, exception or rcode text, response); the last attempt speaks for all.
    errors = exc.kwargs.get("errors") or []
    last = errors[-1][3] if errors else None
    if isinstance(last, dns.exception.DNSException):
        return DNS_BAD_RESPONSE  # unparsable, mismatched or truncated-over-TCP answers
    return DNS_ERROR  # an rcode (SERVFAIL, REFUSED...) or a connection failure (OSError, EOFError)


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
        # None reads /etc/resolv.conf; everything that matters is then set explicitly either way.
        self._resolver = dns.asyncresolver.Resolver(configure=nameservers is None)
        self._resolver.port = port
        if nameservers is not None:
            self._resolver.nameservers = [parse_nameserver(entry, port) for entry in nameservers]
        self._resolver.search = []
        self._resolver.use_search_by_default = False
        self._resolver.cache = None
        self._resolver.use_edns(0, 0, EDNS_PAYLOAD)
        self._resolver.timeout = timeout
        # One attempt gives each nameserver one timeout; retries are ours, with the injectable sleep.
        self._resolver.lifetime = timeout * max(1, len(self._resolver.nameservers))
        self._attempts = attempts
        self._concurrency = concurrency
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
        """One answer per domain, in order; all their questions run at most `concurrency` at once."""
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
        # One event loop, not a thread per question in flight: dnspython's CPU per question is what limits a
        # batch, and threads add their switching to it (measured: ~1,500 vs ~2,500 questions/s on one core).
        slots = asyncio.Semaphore(self._concurrency)
        questions = [(domain, index) for domain in domains for index in range(len(_QUESTIONS))]
        return list(await asyncio.gather(*(self._answer(question, slots) for question in questions)))

    async def _pause(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._sleep is None:
            await asyncio.sleep(seconds)
            return
        result = self._sleep(seconds)
        if inspect.isawaitable(result):
            await result

    async def _answer(self, question: tuple[str, int], slots: asyncio.Semaphore) -> _Answer | ProviderError:
        domain, index = question
        dmarc, rdtype = _QUESTIONS[index]
        try:
            name = dns.name.from_text(domain)
            async with slots:
                return await self._resolve(_DMARC.concatenate(name) if dmarc else name, rdtype)
        except ProviderError as exc:
            return exc
        except Exception as exc:
            logger.exception("dns question crashed")
            return ProviderError(DNS_ERROR, type(exc).__name__)

    async def _resolve(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> _Answer:
        error = ProviderError(DNS_ERROR)
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                delay = min(BACKOFF * 2 ** (attempt - 2), MAX_BACKOFF)
                logger.info("dns: retrying %s %s after %s (%.2fs)", name, rdtype.name, error.code, delay)
                await self._pause(delay)
            if self._limiter is not None:
                await self._pause(self._limiter.reserve())
            try:
                answer = await self._resolver.resolve(name, rdtype, search=False, raise_on_no_answer=False)
            except dns.resolver.NXDOMAIN:
                return NXDOMAIN
            except dns.exception.Timeout as exc:  # LifetimeTimeout included
                error = ProviderError(DNS_TIMEOUT, str(exc))
            except dns.resolver.NoNameservers as exc:
                error = ProviderError(_failure_code(exc), str(exc))
            else:
                return answer.rrset
        raise error


T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from synchronous code, also from a thread that already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dns") as pool:
        return pool.submit(asyncio.run, coroutine).result()
