"""Load benchmark: `bulkapi serve` under inline lookups and async jobs at once, from two accounts.

Starts `bulkapi serve` as a subprocess (as a user would), creates the second account with `bulkapi admin`, warms
up, then sends everything at once with a bounded asyncio client (httpx): `--inline` concurrent lookups of
`--emails` addresses and `--jobs` concurrent jobs of `--rows` rows, alternating between the two accounts, while
a probe asks `/api/health` every 200 ms. Every 20th address / row is invalid, so the counters and the credits are
known in advance.

Prints JSON: resets (connections reset or dropped), errors (anything else that went wrong, with samples), whether
every counter is exact (per job: processed, succeeded, invalid, failed, credits_used, result rows; per lookup:
answers and credits), the credits check per account (balance before - inline charges - job credits == balance
after), and latency percentiles (inline time to first event and to [DONE], job create, job create -> completed,
health during the load).

Usage: ./dev bench load [--inline 50] [--emails 100] [--jobs 20] [--rows 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
INVALID_EVERY = 20
CREDITS = 1_000_000


@dataclass
class Account:
    """An account and its key."""

    name: str
    key: str


@dataclass
class Tally:
    """What the load run saw."""

    resets: int = 0
    errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    charged: dict[str, int] = field(default_factory=dict)

    def time(self, what: str, seconds: float) -> None:
        """Record one latency."""
        self.latencies.setdefault(what, []).append(seconds * 1000)

    def failed(self, what: str, exc: BaseException | str) -> None:
        """Record a reset or an error."""
        if isinstance(exc, BaseException) and _is_reset(exc):
            self.resets += 1
        self.errors.append(f"{what}: {exc!r}"[:300])

    def charge(self, account: Account, credits: int) -> None:
        """Credits the server says it took from an account."""
        self.charged[account.name] = self.charged.get(account.name, 0) + credits


def _is_reset(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (ConnectionResetError, httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def value(i: int, tag: str) -> str:
    """The i-th address of a request or file; every INVALID_EVERY-th one is not an address."""
    if i % INVALID_EVERY == INVALID_EVERY - 1:
        return f"not-an-email-{tag}-{i}"
    return f"first.last{i}.{tag}@company{i % 211}.com"


def make_csv(rows: int, tag: str) -> bytes:
    """A CSV with a name, an email and a row number column."""
    lines = ["Name,Email,Row"] + [f"Person {i},{value(i, tag)},{i}" for i in range(rows)]
    return ("\r\n".join(lines) + "\r\n").encode()


def expected_ok(n: int) -> int:
    """How many of n values are valid addresses."""
    return n - n // INVALID_EVERY


# --- the server -------------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, dev_key: str, log: Path) -> subprocess.Popen[bytes]:
    """`bulkapi serve` on `port`; returns once it says it is ready."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BULKAPI_", "MOTO_"))}
    env.update({"BULKAPI_DEV_TOKEN": dev_key, "BULKAPI_DEV_CREDITS": str(CREDITS)})
    out = log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "local.cli", "serve", "--port", str(port)], cwd=ROOT, stdout=out, stderr=out, env=env
    )
    deadline = time.monotonic() + 180
    while b"Ctrl-C stops everything" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"bulkapi serve did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as a terminal would send it."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def admin(port: int, *args: str) -> dict[str, Any]:
    """One `bulkapi admin` command against the server on `port`."""
    out = subprocess.run(
        [sys.executable, "-m", "local.cli", "admin", "--port", str(port), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    answer: dict[str, Any] = json.loads(out.stdout)
    return answer


# --- the load ---------------------------------------------------------------------------------------------------------


async def balance(client: httpx.AsyncClient, account: Account) -> int:
    """The account's balance now."""
    resp = await client.get("/api/credits", headers={"Authorization": f"Bearer {account.key}"})
    resp.raise_for_status()
    return int(resp.json()["balance"])


async def inline(client: httpx.AsyncClient, account: Account, n: int, emails: int, tally: Tally) -> None:
    """One lookup, read to [DONE]; checks that every input was answered and what it was charged."""
    tag = f"{account.name}-i{n}"
    body = {"emails": [value(i, tag) for i in range(emails)]}
    started = time.perf_counter()
    first: float | None = None
    text = b""
    try:
        async with client.stream(
            "POST", "/api/bulk-lookup", json=body, headers={"Authorization": f"Bearer {account.key}"}
        ) as resp:
            if resp.status_code != 200:
                tally.failed(f"inline {tag}", f"HTTP {resp.status_code}: {(await resp.aread())[:200]!r}")
                return
            async for chunk in resp.aiter_bytes():
                if first is None and b"event: " in text + chunk:
                    first = time.perf_counter() - started
                text += chunk
    except httpx.HTTPError as exc:
        tally.failed(f"inline {tag}", exc)
        return
    tally.time("inline_done", time.perf_counter() - started)
    tally.time("inline_first_event", first or 0.0)
    answered = text.count(b"event: result\n") + text.count(b"event: error\n")
    done = re.search(rb"event: done\ndata: (\{.*?\})\n", text)
    credits = int(json.loads(done.group(1))["credits_used"]) if done else -1
    if not text.endswith(b"data: [DONE]\n\n") or answered != emails or credits != expected_ok(emails):
        tally.mismatches.append(f"inline {tag}: answered {answered}, credits {credits}, ended {text[-20:]!r}")
    tally.charge(account, max(credits, 0))


async def job(client: httpx.AsyncClient, account: Account, n: int, rows: int, tally: Tally) -> None:
    """One job: create, poll to the end, download; checks every counter and the result rows."""
    tag = f"{account.name}-j{n}"
    headers = {"Authorization": f"Bearer {account.key}"}
    started = time.perf_counter()
    try:
        created = await client.post(
            "/api/bulk-jobs",
            headers=headers,
            files={"file": (f"{tag}.csv", make_csv(rows, tag), "text/csv")},
            data={"type": "email"},
        )
        tally.time("job_create", time.perf_counter() - started)
        if created.status_code != 202:
            tally.failed(f"job {tag}", f"HTTP {created.status_code}: {created.text[:200]}")
            return
        job_id = created.json()["id"]
        deadline = time.monotonic() + 600
        while True:
            polled = await client.get("/api/bulk-jobs", params={"id": job_id}, headers=headers)
            if polled.status_code != 200:
                tally.failed(f"job {tag}", f"status HTTP {polled.status_code}: {polled.text[:200]}")
                return
            status = polled.json()
            if status["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        tally.time("job_complete", time.perf_counter() - started)
        result = await client.get("/api/bulk-jobs/download", params={"id": job_id}, headers=headers)
    except httpx.HTTPError as exc:
        tally.failed(f"job {tag}", exc)
        return
    ok = expected_ok(rows)
    want = {"status": "completed", "processed": rows, "succeeded": ok, "invalid": rows - ok, "failed": 0}
    got = {k: status.get(k) for k in want}
    result_rows = result.content.count(b"\r\n") - 1 if result.status_code == 200 else -1
    if got != want or status.get("credits_used") != ok or result_rows != rows:
        tally.mismatches.append(f"job {tag}: {got}, credits {status.get('credits_used')}, result rows {result_rows}")
    tally.charge(account, int(status.get("credits_used") or 0))


async def probe_health(client: httpx.AsyncClient, stop: asyncio.Event, tally: Tally) -> None:
    """Health every 200 ms while the load runs: a request that waits for another shows here."""
    while not stop.is_set():
        started = time.perf_counter()
        try:
            resp = await client.get("/api/health")
            if resp.status_code != 200:
                tally.failed("health", f"HTTP {resp.status_code}")
        except httpx.HTTPError as exc:
            tally.failed("health", exc)
        tally.time("health_during_load", time.perf_counter() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)


async def load(base_url: str, accounts: list[Account], args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, then run everything at once; returns the report."""
    limits = httpx.Limits(max_connections=args.inline + args.jobs + 10, max_keepalive_connections=20)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=httpx.Timeout(300.0)) as client:
        warm = Tally()
        await asyncio.gather(*(inline(client, a, -1, 20, warm) for a in accounts))
        await asyncio.gather(*(job(client, a, -1, 20, warm) for a in accounts))
        before = {a.name: await balance(client, a) for a in accounts}
        tally = Tally()
        stop = asyncio.Event()
        probe = asyncio.create_task(probe_health(client, stop, tally))
        started = time.perf_counter()
        await asyncio.gather(
            *(inline(client, accounts[n % 2], n, args.emails, tally) for n in range(args.inline)),
            *(job(client, accounts[n % 2], n, args.rows, tally) for n in range(args.jobs)),
        )
        wall = time.perf_counter() - started
        stop.set()
        await probe
        after = {a.name: await balance(client, a) for a in accounts}
    credits = {
        a.name: {
            "before": before[a.name],
            "charged": tally.charged.get(a.name, 0),
            "after": after[a.name],
            "exact": before[a.name] - tally.charged.get(a.name, 0) == after[a.name],
        }
        for a in accounts
    }
    return {
        "inline_requests": args.inline,
        "emails_each": args.emails,
        "jobs": args.jobs,
        "rows_each": args.rows,
        "accounts": len(accounts),
        "wall_seconds": round(wall, 2),
        "resets": tally.resets,
        "errors": len(tally.errors),
        "error_samples": tally.errors[:5],
        "counters_exact": not tally.mismatches and not tally.errors,
        "mismatches": tally.mismatches[:10],
        "credits": credits,
        "credits_exact": all(c["exact"] for c in credits.values()),
        "latency_ms": {what: percentiles(values) for what, values in sorted(tally.latencies.items())},
    }


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max, in milliseconds."""
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {
        "n": len(ordered),
        "p50": round(cuts[49], 1),
        "p90": round(cuts[89], 1),
        "p99": round(cuts[98], 1),
        "max": round(ordered[-1], 1),
    }


def main() -> int:
    """Start the server and the second account, run the load, print JSON; exit 1 when anything was off."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inline", type=int, default=50)
    parser.add_argument("--emails", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    port = free_port()
    dev_key = "enc_test_" + secrets.token_urlsafe(18)
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_server(port, dev_key, Path(tmp) / "serve.log")
        try:
            second = admin(port, "create-account", "Load bench B", "--credits", str(CREDITS))["account_id"]
            key = admin(port, "create-key", second, "--test")["api_key"]
            accounts = [Account("dev", dev_key), Account("second", key)]
            report = asyncio.run(load(f"http://127.0.0.1:{port}", accounts, args))
        finally:
            stop_server(proc)
    print(json.dumps(report, indent=2))
    return 0 if report["resets"] == 0 and report["counters_exact"] and report["credits_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
