"""`bulkapi jobs|lookup|search|credits|webhooks`: the HTTP API from a terminal or a script.

Configuration: `--url` / `--key`, or `BULKAPI_URL` / `BULKAPI_KEY` (against a local `bulkapi serve`, the URL and key
it printed). Output: JSON (one object per line for lists and streams) when stdout is not a terminal, tables when it
is; a progress bar for `--wait` on a terminal, log lines otherwise or with `--no-progress`. Errors: the API's
`error` code and `message` on stderr, and an exit code per class: 2 input, 3 auth, 4 credits, 5 server.

argparse rather than click or typer: the commands are few and flat, and `bulkapi serve`/`admin` already use it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from client.api import DEFAULT_URL, TERMINAL, ApiError, Client

EXIT_CODES = {"input": 2, "auth": 3, "credits": 4, "server": 5}
COMMANDS = ("jobs", "lookup", "search", "credits", "webhooks")
SEARCH_PATHS = {
    "domain": "/api/bulk-domain-search",
    "ip": "/api/bulk-ip-search",
    "company": "/api/bulk-company-search",
    "google": "/api/bulk-google-search",
}
INLINE_BATCH = {"lookup": 1000, "search": 100}
JOB_TYPES = ("email", "phone", "company", "domain", "ip", "darkweb")


def add_commands(sub: Any) -> None:
    """The customer commands, on the `bulkapi` parser's subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=os.environ.get("BULKAPI_URL", DEFAULT_URL), help="the API (BULKAPI_URL)")
    common.add_argument("--key", default=os.environ.get("BULKAPI_KEY"), help="your API key (BULKAPI_KEY)")
    common.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")
    common.add_argument("--json", action="store_true", help="JSON output even on a terminal")

    jobs = sub.add_parser("jobs", help="bulk jobs: create, list, status, cancel, delete, download, preview")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    create = jobs_sub.add_parser("create", parents=[common], help="create a job from a file (CSV, .gz, .zip, .xlsx)")
    create.add_argument("file", type=Path)
    create.add_argument("--type", required=True, choices=JOB_TYPES)
    create.add_argument("--column", help="the column to enrich (header name or 1-based number)")
    create.add_argument("--sheet", help="a workbook's sheet to read (default: the first)")
    _phone_options(create)
    create.add_argument("--wait", action="store_true", help="show progress until the job ends")
    create.add_argument("--download", type=Path, metavar="OUT", help="when it ends, download the result to OUT")
    _variant_options(create)
    create.add_argument("--idempotency-key")
    preview = jobs_sub.add_parser("preview", parents=[common], help="what a job would read and cost (no charge)")
    preview.add_argument("file", type=Path)
    preview.add_argument("--type", required=True, choices=JOB_TYPES)
    preview.add_argument("--column")
    preview.add_argument("--sheet", help="a workbook's sheet to read (default: the first)")
    _phone_options(preview)
    listing = jobs_sub.add_parser("list", parents=[common], help="your most recent jobs")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--status")
    for name, text in (
        ("status", "a job's status"),
        ("cancel", "cancel a running job (keeps the rows done so far; never deletes)"),
        ("delete", "delete an ended job and its result (asks first on a terminal)"),
    ):
        one = jobs_sub.add_parser(name, parents=[common], help=text)
        one.add_argument("id")
        if name == "delete":
            one.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    download = jobs_sub.add_parser("download", parents=[common], help="download a job's result")
    download.add_argument("id")
    download.add_argument("--out", type=Path, help="the file to write (default: <id>.csv or .jsonl)")
    _variant_options(download)

    lookup = sub.add_parser("lookup", parents=[common], help="look up emails now (streamed)")
    lookup.add_argument("values", nargs="+", metavar="EMAIL", help="addresses, or - to read them from stdin")
    search = sub.add_parser("search", parents=[common], help="search domains, IPs, companies or Google (streamed)")
    search.add_argument("kind", choices=sorted(SEARCH_PATHS))
    search.add_argument("values", nargs="+", metavar="QUERY", help="queries, or - to read them from stdin")

    sub.add_parser("credits", parents=[common], help="your balance and ledger")
    hooks = sub.add_parser("webhooks", help="webhook endpoints")
    hooks_sub = hooks.add_subparsers(dest="webhooks_command", required=True)
    add = hooks_sub.add_parser("add", parents=[common], help="register an endpoint (prints its secret once)")
    add.add_argument("webhook_url", metavar="URL")
    add.add_argument("--events", help="comma-separated event types (default: all job events)")
    add.add_argument("--description")
    hooks_sub.add_parser("list", parents=[common], help="your endpoints")
    test = hooks_sub.add_parser("test", parents=[common], help="send a test event now")
    test.add_argument("id")
    deliveries = hooks_sub.add_parser("deliveries", parents=[common], help="an endpoint's delivery log")
    deliveries.add_argument("id")


def _phone_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--country", help="phone jobs: ISO 3166 alpha-2 region of numbers without + (e.g. DE)")
    parser.add_argument("--country-column", help="phone jobs: the column naming each row's country")


def _variant_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", dest="row_status", help="only rows with these statuses, e.g. ok,invalid")
    parser.add_argument("--validity", help="email jobs: only rows with these verdicts, e.g. valid or valid,risky")
    parser.add_argument("--format", choices=("csv", "jsonl"), help="the file format (default csv)")
    parser.add_argument("--delimiter", choices=("comma", "semicolon", "tab", "pipe"))
    parser.add_argument("--formula-guard", choices=("on", "off"), help="CSV: the spreadsheet formula guard (on)")


def run(args: argparse.Namespace) -> int:
    """Run a customer command; the exit code."""
    if not args.key:
        _fail("missing_key", "give your API key with --key or BULKAPI_KEY (bulkapi serve prints the local one)")
        return EXIT_CODES["auth"]
    client = Client(args.url, args.key)
    out = Output(json_mode=args.json or not sys.stdout.isatty(), progress=not args.no_progress and _tty(sys.stderr))
    try:
        return _dispatch(client, args, out)
    except ApiError as exc:
        _fail(exc.code, exc.message, exc.details)
        return EXIT_CODES[exc.kind]
    except OSError as exc:
        _fail("local_error", str(exc))
        return EXIT_CODES["input"]
    finally:
        client.close()


def _dispatch(client: Client, args: argparse.Namespace, out: Output) -> int:
    command = args.command
    if command == "jobs":
        return _jobs(client, args, out)
    if command in ("lookup", "search"):
        path = "/api/bulk-lookup" if command == "lookup" else SEARCH_PATHS[args.kind]
        field = "emails" if command == "lookup" else "queries"
        values = list(_values(args.values))
        for start in range(0, len(values), INLINE_BATCH[command]):
            chunk = values[start : start + INLINE_BATCH[command]]
            for event, data in client.stream(path, {field: chunk}):
                if event in ("result", "error"):
                    out.record({"event": event, **data})
        return 0
    if command == "credits":
        out.record(client.credits())
        return 0
    if args.webhooks_command == "add":
        events = [e.strip() for e in args.events.split(",")] if args.events else None
        out.record(client.add_webhook(args.webhook_url, events, args.description))
    elif args.webhooks_command == "list":
        out.records(client.webhooks())
    elif args.webhooks_command == "test":
        out.record(client.test_webhook(args.id))
    else:
        out.records(client.deliveries(args.id))
    return 0


def _jobs(client: Client, args: argparse.Namespace, out: Output) -> int:
    sub = args.jobs_command
    if sub == "create":
        job = client.create_job(
            args.file,
            args.type,
            args.column,
            args.idempotency_key,
            args.sheet,
            country=args.country,
            country_column=args.country_column,
        )
        out.log(f"job {job['id']} created ({job.get('total_rows') or '?'} rows)")
        if not (args.wait or args.download):
            out.record(job)
            return 0
        final = _wait(client, job["id"], out)
        if args.download:
            _download(client, final["id"], args.download, args, out)
        out.record(final)
        return 0 if final["status"] == "completed" else EXIT_CODES["input"]
    if sub == "preview":
        out.record(
            client.preview(
                args.file, args.type, args.column, args.sheet, country=args.country, country_column=args.country_column
            )
        )
    elif sub == "list":
        out.records(client.jobs(args.limit, args.status))
    elif sub == "status":
        out.record(client.job(args.id))
    elif sub == "cancel":
        out.record(client.cancel(args.id))
    elif sub == "delete":
        if not _confirmed(args):
            return EXIT_CODES["input"]
        out.record(client.purge(args.id))
    else:
        suffix = ".jsonl" if args.format == "jsonl" else ".csv"
        _download(client, args.id, args.out or Path(args.id + suffix), args, out)
    return 0


def _download(client: Client, job_id: str, target: Path, args: argparse.Namespace, out: Output) -> None:
    variant = {
        "status": args.row_status or "",
        "validity": args.validity or "",
        "format": args.format or "",
        "delimiter": args.delimiter or "",
        "formula_guard": args.formula_guard or "",
    }
    client.download(job_id, target, **variant)
    out.log(f"downloaded {target} ({target.stat().st_size} bytes)")


def _wait(client: Client, job_id: str, out: Output, interval: float = 0.5) -> dict[str, Any]:
    """Poll the job until it ends, showing rows done / total, rows/s and ETA."""
    bar = out.bar(job_id)
    last_log = 0.0
    try:
        while True:
            job = client.job(job_id)
            done, total = int(job.get("processed") or 0), job.get("total_rows")
            if bar is not None:
                bar.show(done, total, job)
            elif time.monotonic() - last_log >= 2 or job["status"] in TERMINAL:
                last_log = time.monotonic()
                eta = job.get("eta_seconds")
                out.log(
                    f"job {job_id} {job['status']}: {done}/{total if total is not None else '?'} rows"
                    f" ({job.get('percent', 0)}%)" + (f", eta {eta:.0f}s" if eta else "")
                )
            if job["status"] in TERMINAL:
                return job
            time.sleep(interval)
    finally:
        if bar is not None:
            bar.stop()


class Bar:
    """A rich progress bar of rows done / total with rows/s and ETA."""

    def __init__(self, job_id: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} rows/s"),
            TimeRemainingColumn(),
            console=None,
            transient=False,
        )
        self.started = time.monotonic()
        self.task = self.progress.add_task(job_id, total=None, rate="-")
        self.progress.start()

    def show(self, done: int, total: int | None, job: dict[str, Any]) -> None:
        """Move the bar to the job's counters."""
        elapsed = max(1e-6, time.monotonic() - self.started)
        self.progress.update(
            self.task, completed=done, total=total, rate=f"{done / elapsed:,.0f}", description=job["status"]
        )

    def stop(self) -> None:
        """Leave the bar as it ended."""
        self.progress.stop()


class Output:
    """JSON lines for scripts, tables and a bar for people."""

    def __init__(self, *, json_mode: bool, progress: bool) -> None:
        self.json_mode = json_mode
        self.progress = progress

    def bar(self, job_id: str) -> Bar | None:
        """A progress bar, or None when progress goes to log lines."""
        return Bar(job_id) if self.progress else None

    def log(self, text: str) -> None:
        """A progress line on stderr (stdout stays the data)."""
        print(f"bulkapi: {text}", file=sys.stderr, flush=True)

    def record(self, data: dict[str, Any]) -> None:
        """One object: a JSON line, or key/value lines on a terminal."""
        if self.json_mode:
            print(json.dumps(data, ensure_ascii=False, default=str), flush=True)
            return
        width = max((len(k) for k in data), default=0)
        for key, value in data.items():
            shown = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value
            print(f"{key:<{width}}  {shown}")
        print()

    def records(self, items: Iterable[dict[str, Any]]) -> None:
        """Several objects."""
        for item in items:
            self.record(item)


def _values(given: list[str]) -> Iterator[str]:
    for value in given:
        if value == "-":
            yield from (line.strip() for line in sys.stdin if line.strip())
        else:
            yield value


def _confirmed(args: argparse.Namespace) -> bool:
    """Whether deleting a job was confirmed: `--yes`, or `y` typed at the terminal; a script must pass `--yes`."""
    if args.yes:
        return True
    if not _tty(sys.stdin):
        _fail("confirmation_required", "deleting a job cannot be undone: pass --yes to delete without asking")
        return False
    answer = input(f"Delete job {args.id} and its result for good? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        print("bulkapi: not deleted", file=sys.stderr)
        return False
    return True


def _tty(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def _fail(code: str, message: str, details: dict[str, Any] | None = None) -> None:
    print(f"bulkapi: error {code}: {message}", file=sys.stderr)
    if details:
        print(f"bulkapi: {json.dumps(details, ensure_ascii=False)}", file=sys.stderr)
