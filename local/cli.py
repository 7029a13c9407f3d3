"""`bulkapi serve`: the API on this machine, with no AWS account and no Docker."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from local.runtime import LocalRuntime, Options


def serve(host: str, port: int) -> int:
    """Start the local runtime and block until SIGINT/SIGTERM."""
    runtime = LocalRuntime(Options.from_env(host, port))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("bulkapi: starting the local runtime (the first start synthesizes the CDK stack)...", flush=True)
    runtime.start()
    print(
        f"bulkapi is ready\n"
        f"  API:           {runtime.base_url}\n"
        f"  API key:       {runtime.api_key}\n"
        f"  S3 endpoint:   {runtime.endpoint}   (any access key / secret)\n"
        f"  upload bucket: {runtime.bucket}   (drop CSVs at drop/acct_dev/<type>/<name>.csv)\n"
        f"  jobs table:    {runtime.table}\n"
        f"  try:           curl -H 'Authorization: Bearer {runtime.api_key}' {runtime.base_url}/api/health\n"
        f"Ctrl-C stops everything.",
        flush=True,
    )
    stop.wait()
    print("bulkapi: stopping", flush=True)
    runtime.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="bulkapi", description="bulk enrichment API: local runtime")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run the API locally (embedded AWS emulation, no Docker)")
    p_serve.add_argument("--host", default=os.environ.get("BULKAPI_HOST", "127.0.0.1"))
    p_serve.add_argument("--port", type=int, default=int(os.environ.get("BULKAPI_PORT", "8080")))
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.host, args.port)
    return 2


if __name__ == "__main__":
    sys.exit(main())
