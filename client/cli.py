"""`bulkapi jobs|lookup|search|credits|webhooks`: the HTTP API from a terminal or a script.

Configuration: `--url` / `--key`, or `BULKAPI_URL` / `BULKAPI_KEY` (against a local `bulkapi serve`, the URL and key
it printed). Output: JSON (one object per line for lists and streams) when stdout is not a terminal, tables when it
is; a progress bar for `--wait` on a terminal, log lines otherwise or with `--no-progress`. Errors: the API's
`error` code and `message` on stderr. Exit codes (EXIT_CODES): 0 done, 2 input, 3 auth, 4 credits, 5 server, 6 the
job failed, 7 the job was cancelled, 8 a webhook test was not delivered, 130 Ctrl-C (the job goes on: the message says
how to re-attach, `bulkapi jobs wait ID`).

argparse rather than click or typer: the commands are few and flat, and `bulkapi serve`/`admin` already use it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from client.api import DEFAULT_URL, TERMINAL, ApiError, Client

EXIT_CODES = {"input": 2, "auth": 3, "credits": 4, "server": 5, "failed": 6, "cancelled": 7, "undelivered": 8}
# What a shell reports for a process ended by SIGINT (128 + 2).
INTERRUPTED = 130
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
    wait = jobs_sub.add_parser("wait", parents=[common], help="watch a job until it ends (re-attach after Ctrl-C)")
    wait.add_argument("id")
    wait.add_argument("--download", type=Path, metavar="OUT", help="when it ends, download the result to OUT")
    _variant_options(wait)
    download = jobs_sub.add_parser("download", parents=[common], help="download a job's result")
    download.add_argument("id")
    download.add_argument(
        "--out", type=Path, help="the file to write (default: the name the API gives it, in the current folder)"
    )
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
    _webhook_changes(hooks_sub, common)


def _phone_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--country", help="phone jobs: ISO 3166 alpha-2 region of numbers without + (e.g. DE)")
    parser.add_argument("--country-column", help="phone jobs: the column naming each row's country")


def _variant_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", dest="row_status", help="only rows with these statuses, e.g. ok,invalid")
    parser.add_argument("--validity", help="email jobs: only rows with these verdicts, e.g. valid or valid,risky")
    parser.add_argument("--format", choices=("csv", "jsonl"), help="the file format (default csv)")
    parser.add_argument("--delimiter", choices=("comma", "semicolon", "tab", "pipe"))
    parser.add_argument("--formula-guard", choices=("on", "off"), help="CSV: the spreadsheet formula guard (on)")


def _webhook_changes(hooks_sub: Any, common: argparse.ArgumentParser) -> None:
    """`webhooks update` and `webhooks remove`."""
    update = hooks_sub.add_parser("update", parents=[common], help="change an endpoint's url, events or description")
    update.add_argument("id")
    update.add_argument("--endpoint-url", dest="webhook_url", metavar="URL", help="the endpoint's new address")
    update.add_argument("--events", help="comma-separated event types")
    update.add_argument("--description")
    active = update.add_mutually_exclusive_group()
    active.add_argument("--enable", dest="is_active", action="store_const", const=True, help="deliver again")
    active.add_argument("--disable", dest="is_active", action="store_const", const=False, help="pause deliveries")
    remove = hooks_sub.add_parser("remove", parents=[common], help="remove an endpoint and its delivery log")
    remove.add_argument("id")


def run(args: argparse.Namespace) -> int:
    """Run a customer command; the exit code."""
    if not args.key:
        _fail("missing_key", "give your API key with --key or BULKAPI_KEY (bulkapi serve prints the local one)")
        return EXIT_CODES["auth"]
    client = Client(args.url, args.key)
    out = Output(json_mode=args.json or not sys.stdout.isatty(), progress=not args.no_progress and _tty(sys.stderr))
    try:
        return _dispatch(client, args, out)
    except Detached as detached:
        print(
            f"\nbulkapi: stopped watching; job {detached.job_id} goes on on the server."
            f" Re-attach with: bulkapi jobs wait {detached.job_id}",
            file=sys.stderr,
            flush=True,
        )
        return INTERRUPTED
    except KeyboardInterrupt:
        print("\nbulkapi: interrupted", file=sys.stderr)
        return INTERRUPTED
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
    if args.webhooks_command in ("update", "remove", "test"):
        return _webhook_change(client, args, out)
    if args.webhooks_command == "add":
        events = [e.strip() for e in args.events.split(",")] if args.events else None
        out.record(client.add_webhook(args.webhook_url, events, args.description))
    elif args.webhooks_command == "list":
        out.records(client.webhooks())
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
        return _wait_and_report(client, job["id"], args, out)
    if sub == "wait":
        return _wait_and_report(client, args.id, args, out)
    if sub == "preview":
        out.preview(
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
    elif args.out is None:
        target = client.download_named(
            args.id, Path.cwd(), ".jsonl" if args.format == "jsonl" else ".csv", **_variant(args)
        )
        out.log(f"downloaded {target} ({target.stat().st_size:,} bytes)")
    else:
        _download(client, args.id, args.out, args, out)
    return 0


def _wait_and_report(client: Client, job_id: str, args: argparse.Namespace, out: Output) -> int:
    """Watch the job to its end, download it if asked, print its final status; the exit code of how it ended."""
    final = _wait(client, job_id, out)
    if args.download:
        _download(client, final["id"], args.download, args, out)
    out.record(final)
    return {"completed": 0, "cancelled": EXIT_CODES["cancelled"]}.get(final["status"], EXIT_CODES["failed"])


def _webhook_change(client: Client, args: argparse.Namespace, out: Output) -> int:
    """`webhooks update|remove|test`; a test that was not delivered exits non-zero, with the reason."""
    if args.webhooks_command == "remove":
        out.record(client.remove_webhook(args.id))
        return 0
    if args.webhooks_command == "update":
        changes: dict[str, Any] = {
            "url": args.webhook_url,
            "events": [e.strip() for e in args.events.split(",")] if args.events else None,
            "description": args.description,
            "is_active": args.is_active,
        }
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            _fail("nothing_to_change", "give --endpoint-url, --events, --description, --enable or --disable")
            return EXIT_CODES["input"]
        out.record(client.update_webhook(args.id, changes))
        return 0
    result = client.test_webhook(args.id)
    out.record(result)
    if result.get("success"):
        return 0
    reason = result.get("error") or f"the endpoint answered {result.get('response_status')}"
    _fail("webhook_not_delivered", f"the test event was not delivered: {reason}")
    return EXIT_CODES["undelivered"]


def _variant(args: argparse.Namespace) -> dict[str, str]:
    return {
        "status": args.row_status or "",
        "validity": args.validity or "",
        "format": args.format or "",
        "delimiter": args.delimiter or "",
        "formula_guard": args.formula_guard or "",
    }


def _download(client: Client, job_id: str, target: Path, args: argparse.Namespace, out: Output) -> None:
    client.download(job_id, target, **_variant(args))
    out.log(f"downloaded {target} ({target.stat().st_size:,} bytes)")


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
                ended = job["status"] in TERMINAL
                out.log(
                    f"job {job_id} {job['status']}: {done}/{total if total is not None else '?'} rows"
                    f" ({job.get('percent', 0)}%)" + (f", eta {eta:.0f}s" if eta and not ended else "")
                )
            if job["status"] in TERMINAL:
                return job
            time.sleep(interval)
    except KeyboardInterrupt:
        raise Detached(job_id) from None
    finally:
        if bar is not None:
            bar.stop()


class Detached(Exception):
    """Ctrl-C while watching a job: the watch stops, the job does not."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


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
        self.task = self.progress.add_task(job_id, total=None, rate="-")
        self.progress.start()

    def show(self, done: int, total: int | None, job: dict[str, Any]) -> None:
        """Move the bar to the job's counters."""
        rate = job_rate(job)
        self.progress.update(
            self.task,
            completed=done,
            total=total,
            rate="-" if rate is None else f"{rate:,.0f}",
            description=job["status"],
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
        """One object: a JSON line, or a two-column table on a terminal (a list inside it as a table of its own)."""
        if self.json_mode:
            print(json.dumps(data, ensure_ascii=False, default=str), flush=True)
            return
        from rich.console import Console

        console = Console()
        nested = {k: v for k, v in data.items() if isinstance(v, list) and v and all(isinstance(i, dict) for i in v)}
        console.print(fields_table({k: v for k, v in data.items() if k not in nested}))
        for name, items in nested.items():
            console.print(rows_table(items, title=name))

    def preview(self, result: dict[str, Any]) -> None:
        """A preview: JSON, or its facts and its sample rows as the file's columns and the enrichment beside them."""
        if self.json_mode:
            self.record(result)
            return
        from rich.console import Console

        console = Console()
        facts = {k: v for k, v in result.items() if k not in ("rows", "columns", "detected")}
        console.print(fields_table({**facts, **(result.get("detected") or {})}))
        console.print(preview_table(result.get("columns") or [], result.get("rows") or []))

    def records(self, items: Iterable[dict[str, Any]]) -> None:
        """Several objects: JSON lines, or one table of them on a terminal."""
        if self.json_mode:
            for item in items:
                self.record(item)
            return
        from rich.console import Console

        Console().print(rows_table(list(items)))


def human(value: Any) -> str:
    """A value as a person reads it: yes/no, `-` for none, thousands separators, lists joined, objects as JSON."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, list) and all(not isinstance(i, (dict, list)) for i in value):
        return ", ".join(human(i) for i in value) or "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def fields_table(data: dict[str, Any]) -> Any:
    """One object as a rich table of field / value."""
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in data.items():
        table.add_row(key, human(value))
    return table


# The columns a list shows first (when present), so a job list fits a terminal; the rest is in `--json`.
LIST_COLUMNS = (
    "id", "status", "type", "filename", "url", "events", "is_active", "event_type", "attempts", "response_status",
    "total_rows", "processed", "percent", "credits_used", "at", "kind", "amount", "job_id", "created_at",
    "last_attempt_at",
)  # fmt: skip


def rows_table(items: list[dict[str, Any]], title: str | None = None) -> Any:
    """Several objects as a rich table, one row each, with the columns of LIST_COLUMNS they have."""
    from rich.table import Table

    if not items:
        return "nothing yet"
    present = {key for item in items for key in item}
    columns = [c for c in LIST_COLUMNS if c in present] or sorted(present)
    table = Table(title=title, title_justify="left")
    for column in columns:
        numeric = all(isinstance(i.get(column), (int, float)) for i in items if i.get(column) is not None)
        table.add_column(column, justify="right" if numeric else "left", overflow="fold")
    for item in items:
        table.add_row(*(human(item.get(column)) for column in columns))
    return table


# What a customer reads an enriched row by, right after the file's own columns (as the console shows it).
PREVIEW_FIRST = ("validity", "reason")


def preview_table(columns: list[str], rows: list[dict[str, Any]]) -> Any:
    """The preview's sample rows: the file's columns, then the verdict, the row status and two more enrichments."""
    from rich.table import Table

    names = [c or f"column {i + 1}" for i, c in enumerate(columns)]
    enriched = list(dict.fromkeys(k for row in rows for k in (row.get("enrichment") or {})))
    extra = [k for k in PREVIEW_FIRST if k in enriched] + [k for k in enriched if k not in PREVIEW_FIRST][:2]
    table = Table(title="first rows, enriched", title_justify="left")
    for name in [*names, *extra, "row status", "row error"]:
        table.add_column(name, overflow="fold")
    for row in rows:
        cells = list(row.get("cells") or []) + [None] * (len(names) - len(row.get("cells") or []))
        enrichment = row.get("enrichment") or {}
        values = [*cells[: len(names)], *(enrichment.get(k) for k in extra), row.get("status"), row.get("error")]
        table.add_row(*(human(v) for v in values))
    return table


def job_rate(job: dict[str, Any]) -> float | None:
    """Rows per second since the job itself started (its `started_at`), up to its end or now; None before."""
    started = _instant(job.get("started_at"))
    if started is None or not job.get("processed"):
        return None
    end = _instant(job.get("completed_at") or job.get("ended_at")) if job.get("status") in TERMINAL else None
    elapsed = (end or datetime.now(UTC)).timestamp() - started.timestamp()
    return float(job["processed"]) / max(elapsed, 1.0)


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
