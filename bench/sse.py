"""Inline SSE benchmark: 1,000 emails through POST /api/bulk-lookup on an in-process local runtime, over HTTP.

Prints JSON: per run the time to the first `event: result` and to `data: [DONE]` (from sending the request), the
median and worst of the measured runs, the targets (first event <= 50 ms, [DONE] <= 1 s) and whether they are met.
A first, unmeasured request warms the process (imports, enrichment data, boto3 client), as a warm Lambda would be.
Usage: ./dev bench sse --emails 1000 --runs 5
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local.runtime import LocalRuntime, Options

FIRST_EVENT_TARGET_MS = 50.0
DONE_TARGET_MS = 1000.0


def run_once(port: int, key: str, emails: list[str]) -> dict[str, float | int]:
    """One request over a fresh connection: milliseconds to the first event and to [DONE], inputs answered."""
    body = json.dumps({"emails": emails})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    conn.request("POST", "/api/bulk-lookup", body, headers)
    resp = conn.getresponse()
    if resp.status != 200:
        raise SystemExit(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    first_ms: float | None = None
    seen = b""
    while True:
        chunk = resp.read1(65536)
        if not chunk:
            break
        seen += chunk
        if first_ms is None and b"event: " in seen:
            first_ms = (time.perf_counter() - started) * 1000
    done_ms = (time.perf_counter() - started) * 1000
    conn.close()
    if not seen.endswith(b"data: [DONE]\n\n") or first_ms is None:
        raise SystemExit(f"the stream did not end with [DONE]: {seen[-200:]!r}")
    answered = seen.count(b"event: result\n") + seen.count(b"event: error\n")
    return {"first_event_ms": round(first_ms, 1), "done_ms": round(done_ms, 1), "answered": answered}


def main() -> int:
    """Start the runtime, warm it, measure, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    options = Options(port=0, dev_credits=10_000_000)
    with LocalRuntime(options) as runtime:
        assert runtime.gateway is not None
        port, key = runtime.gateway.port, runtime.api_key
        run_once(port, key, [f"warm.up{i}@example.org" for i in range(50)])
        runs = [
            run_once(port, key, [f"first.last{r}x{i}@company{i % 211}.com" for i in range(args.emails)])
            for r in range(args.runs)
        ]
    first = [float(r["first_event_ms"]) for r in runs]
    done = [float(r["done_ms"]) for r in runs]
    print(
        json.dumps(
            {
                "emails": args.emails,
                "runs": runs,
                "first_event_ms": {"median": statistics.median(first), "max": max(first)},
                "done_ms": {"median": statistics.median(done), "max": max(done)},
                "targets_ms": {"first_event": FIRST_EVENT_TARGET_MS, "done": DONE_TARGET_MS},
                "targets_met": statistics.median(first) <= FIRST_EVENT_TARGET_MS
                and statistics.median(done) <= DONE_TARGET_MS,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
