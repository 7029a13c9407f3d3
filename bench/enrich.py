"""Offline enrichment throughput: rows/s per lookup type on generated realistic values, printed as JSON.

Usage: python bench/enrich.py [--rows 10000] [--repeat 3] [--stub-rows 1000] [--stub-ms 20]

Each type gets `rows` mostly distinct values (so per-call dedup does not flatter the numbers), about 5% of them
invalid. One warm-up call per type loads the lazy data (PSL snapshot, phone geocoder, GeoIP tables) and is reported
separately as `first_call_s`; the throughput is the best of `repeat` timed runs over the whole batch.

`provider_stub`: one worker-sized batch (`stub-rows` distinct values) through the real online path (Source, the
provider client, HTTP over loopback) against a stub provider in another process that answers each request after
`stub-ms`; the target is >= 1,000 rows/s per worker invocation. No cache, so every row is a provider call.
`email_dns` does the same for email rows with DNS on, against a UDP DNS stub with the same delay: five
questions per row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from functions.enrich import enrich_values
from functions.providers.sources import from_settings
from functions.settings import EnrichSettings

FIRST = ["john", "jane", "maria", "mohammed", "li", "olga", "pierre", "anna", "james", "sofia", "raj", "yuki"]
LAST = ["smith", "doe", "garcia", "müller", "chen", "ivanova", "dubois", "rossi", "kumar", "tanaka", "o'brien"]
WORDS = ["acme", "globex", "initech", "umbrella", "stark", "wayne", "hooli", "vandelay", "wonka", "cyberdyne"]
SUFFIXES = ["com", "de", "co.uk", "fr", "io", "com.au", "nl", "net", "org", "co.jp", "com.br", "ch"]
FREE = ["gmail.com", "yahoo.com", "outlook.com", "gmx.de", "web.de", "hotmail.co.uk", "icloud.com"]
FORMS = ["GmbH", "AG", "Inc.", "Ltd", "LLC", "S.A.", "B.V.", "Pty Ltd", "SE", "S.r.l.", "GmbH & Co. KG", ""]


def _emails(rng: random.Random, n: int) -> list[str]:
    out = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST).replace("'", "")
        domain = rng.choice(FREE) if rng.random() < 0.4 else f"{rng.choice(WORDS)}{i % 97}.{rng.choice(SUFFIXES)}"
        local = rng.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}{i % 100}", "info", "sales"])
        if rng.random() < 0.1:
            local += f"+tag{i % 7}"
        out.append(f"{local}{i}@{domain}" if rng.random() < 0.5 else f"{local}@{domain}")
    return _spoil(rng, out)


def _phones(rng: random.Random, n: int) -> list[str]:
    makers: list[Callable[[], str]] = [
        lambda: f"+1 {rng.choice([212, 415, 650, 312, 617])}-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}",
        lambda: f"({rng.choice([202, 305, 512])}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}",
        lambda: f"+49 {rng.choice([30, 89, 40, 151, 170])} {rng.randint(1000000, 9999999)}",
        lambda: f"+44 20 {rng.randint(7000, 8999)} {rng.randint(0, 9999):04d}",
        lambda: f"+33 6 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
    ]
    return _spoil(rng, [rng.choice(makers)() for _ in range(n)])


def _domains(rng: random.Random, n: int) -> list[str]:
    out = []
    for i in range(n):
        host = f"{rng.choice(WORDS)}{i}.{rng.choice(SUFFIXES)}"
        shape = rng.random()
        if shape < 0.3:
            host = f"https://www.{host}:{rng.choice([443, 8080])}/path/{i}?q=1"
        elif shape < 0.4:
            host = f"bücher{i}.{rng.choice(['de', 'at', 'ch'])}"
        elif shape < 0.5:
            host = f"blog{i}.blogspot.com"
        out.append(host)
    return _spoil(rng, out)


def _ips(rng: random.Random, n: int) -> list[str]:
    out = []
    for i in range(n):
        shape = rng.random()
        if shape < 0.6:
            out.append(".".join(str(rng.randint(1, 223)) for _ in range(4)))
        elif shape < 0.85:
            out.append(f"2a00:1450:{rng.randint(0, 0xFFFF):x}:{rng.randint(0, 0xFFFF):x}::{i:x}")
        elif shape < 0.95:
            out.append(f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}")
        else:
            out.append(f"fe80::{i:x}%eth0")
    return _spoil(rng, out)


def _companies(rng: random.Random, n: int) -> list[str]:
    out = []
    for i in range(n):
        if rng.random() < 0.15:
            out.append(f"{rng.choice(WORDS)}-{i}.{rng.choice(SUFFIXES)}")
        else:
            out.append(
                f"{rng.choice(WORDS).title()} {rng.choice(['Holding', 'Systems', 'Bau', ''])} {i} {rng.choice(FORMS)}"
            )
    return _spoil(rng, out)


def _queries(rng: random.Random, n: int) -> list[str]:
    return _spoil(rng, [f"{rng.choice(WORDS)} {rng.choice(LAST)} {i}" for i in range(n)])


def _breach_queries(rng: random.Random, n: int) -> list[str]:
    return _spoil(rng, [f"{rng.choice(FIRST)}{i}@{rng.choice(FREE)}" for i in range(n)])


def _spoil(rng: random.Random, values: list[str]) -> list[str]:
    # Real files have blanks and junk; about 5% here.
    return [rng.choice(["", "  ", "n/a", "???", "#REF!"]) if rng.random() < 0.05 else v for v in values]


GENERATORS: dict[str, Callable[[random.Random, int], list[str]]] = {
    "email": _emails,
    "phone": _phones,
    "domain": _domains,
    "ip": _ips,
    "company": _companies,
    "darkweb": _breach_queries,
    "google": _queries,
}


_NOT_BREACHED = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
_SEARCH_BODY = json.dumps({"items": [{"title": "t", "link": "https://x.test/", "snippet": "s"}]}).encode()
_SEARCH = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(_SEARCH_BODY),
    _SEARCH_BODY,
)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    # asyncio, so the stub itself is never what limits the measured client (thousands of waits cost nothing).
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(delay)
            writer.write(_NOT_BREACHED if b" /breachedaccount/" in head.split(b"\r\n", 1)[0] else _SEARCH)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


_TTL_CLASS_IN = struct.pack("!HI", 1, 300)
# The records every name has, by query type, as rdata: a pointer (0xC00C) names the question's name, so
# `mx.<name>` is one label plus that pointer. TXT of `_dmarc.<name>` is the DMARC record, of any other name SPF.
_RDATA = {
    15: b"\x00\x0a\x02mx\xc0\x0c",  # MX 10 mx.<name>.
    1: bytes([192, 0, 2, 1]),  # A 192.0.2.1
    28: bytes.fromhex("20010db8000000000000000000000001"),  # AAAA 2001:db8::1
    16: b"\x0ev=spf1 mx -all",
}
_DMARC_TXT = b"\x12v=DMARC1; p=reject"


def answer_wire(query: bytes) -> bytes:
    """The stub's answer to one query, built from the query's bytes (same records as a zone would give)."""
    end = query.index(b"\x00", 12) + 5  # the question: the name up to its root label, then type and class
    rdtype = int.from_bytes(query[end - 4 : end - 2], "big")
    rdata = _RDATA.get(rdtype)
    if rdtype == 16 and query[12:19].lower() == b"\x06_dmarc":
        rdata = _DMARC_TXT
    flags = 0x8000 | (query[2] & 0x01) << 8  # QR, and RD copied from the query, as a resolver answers
    header = query[:2] + struct.pack("!HHHHH", flags, 1, 1 if rdata else 0, 0, 0)
    if rdata is None:
        return header + query[12:end]
    record = b"\xc0\x0c" + struct.pack("!H", rdtype) + _TTL_CLASS_IN + struct.pack("!H", len(rdata)) + rdata
    return header + query[12:end] + record


class _SlowResolver(asyncio.DatagramProtocol):
    """A DNS server that answers every question after the delay: MX, A, AAAA, SPF and DMARC for every name.

    The answers are built from the query's bytes, not parsed and rendered with dnspython: a Python DNS library
    costs about as much CPU per question as the client measured, and on a shared machine the stub then limits it.
    """

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        asyncio.get_running_loop().call_later(self.delay, self._send, answer_wire(data), addr)

    def _send(self, wire: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(wire, addr)


def _serve(delay: float, ready: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    async def run() -> None:
        server = await asyncio.start_server(lambda r, w: _answer(r, w, delay), "127.0.0.1", 0, backlog=1024)
        udp, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _SlowResolver(delay), local_addr=("127.0.0.1", 0)
        )
        ready.put((server.sockets[0].getsockname()[1], udp.get_extra_info("sockname")[1]))
        await server.serve_forever()

    asyncio.run(run())


def provider_stub(rows: int, delay_ms: float) -> dict[str, object]:
    """rows/s of one batch through each HTTP provider against a stub answering after `delay_ms`."""
    ready: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    server = multiprocessing.Process(target=_serve, args=(delay_ms / 1000, ready), daemon=True)
    server.start()
    try:
        http_port, dns_port = ready.get(timeout=10)
        base = f"http://127.0.0.1:{http_port}"
        settings = EnrichSettings(
            dns_enabled=True,
            dns_nameservers=f"127.0.0.1:{dns_port}",
            hibp_api_key="bench",
            hibp_base_url=base,
            hibp_requests_per_minute=1e9,
            search_api_key="bench",
            search_engine_id="bench",
            search_base_url=f"{base}/search",
            search_requests_per_minute=1e9,
        )
        sources = from_settings(settings)
        out: dict[str, object] = {"rows": rows, "delay_ms": delay_ms, "concurrency": settings.provider_concurrency}
        for job_type in ("darkweb", "google"):
            values = [
                v
                for v in GENERATORS[job_type](random.Random(f"stub-{job_type}"), rows * 2)
                if "@" in v or job_type == "google"
            ]
            values = [f"{v}" for v in dict.fromkeys(values)][:rows]
            start = time.perf_counter()
            results = enrich_values(job_type, values, sources)
            seconds = time.perf_counter() - start
            statuses: dict[str, int] = {}
            for r in results:
                statuses[r.status] = statuses.get(r.status, 0) + 1
            out[job_type] = {
                "rows_per_s": round(len(values) / seconds),
                "seconds": round(seconds, 3),
                "statuses": statuses,
            }
        # Email with DNS on: five questions per distinct mail domain (MX, A, AAAA, TXT, _dmarc TXT).
        emails = [f"user{i}@company-{i}.example" for i in range(rows)]
        start = time.perf_counter()
        results = enrich_values("email", emails, sources)
        seconds = time.perf_counter() - start
        out["email_dns"] = {
            "rows_per_s": round(rows / seconds),
            "seconds": round(seconds, 3),
            "questions_per_row": 5,
            "valid": sum(1 for r in results if r.data.get("validity") == "valid"),
        }
        return out
    finally:
        server.terminate()
        server.join()


def main() -> None:
    """Print rows/s per type as JSON on stdout, nothing else."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stub-rows", type=int, default=1000)
    parser.add_argument("--stub-ms", type=float, default=20.0)
    args = parser.parse_args()
    report: dict[str, object] = {"rows": args.rows, "repeat": args.repeat, "mode": "offline", "types": {}}
    types: dict[str, object] = {}
    for job_type, generate in GENERATORS.items():
        values = generate(random.Random(f"bench-{job_type}"), args.rows)
        start = time.perf_counter()
        enrich_values(job_type, values[:1])
        first_call = time.perf_counter() - start
        best = float("inf")
        statuses: dict[str, int] = {}
        for _ in range(args.repeat):
            start = time.perf_counter()
            results = enrich_values(job_type, values)
            best = min(best, time.perf_counter() - start)
        for r in results:
            statuses[r.status] = statuses.get(r.status, 0) + 1
        types[job_type] = {
            "rows_per_s": round(args.rows / best),
            "best_s": round(best, 4),
            "first_call_s": round(first_call, 4),
            "statuses": statuses,
        }
    report["types"] = types
    report["provider_stub"] = provider_stub(args.stub_rows, args.stub_ms)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
