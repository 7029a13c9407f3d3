# PYTHON_ARGCOMPLETE_OK
"""`bulkapi serve`: the API on this machine, with no AWS account and no Docker."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import signal
import sys
import threading
import urllib.parse
from pathlib import Path

import argcomplete
import boto3

from client import cli as client_cli
from functions.adapters.accounts import AccountStore
from functions.adapters.credits import CreditStore
from functions.errors import BulkApiError
from functions.logic import accounts
from functions.settings import ApiSettings, load
from local.runtime import API_HANDLER, LocalRuntime, Options, is_loopback
from local.template import CACHE

# Said at every start: moto keeps everything in this process tree's memory (see README "Running locally").
STATE_NOTICE = (
    "in memory only: stopping bulkapi serve loses every job, file, account, key, webhook and balance "
    "(set BULKAPI_DEV_TOKEN to keep the same dev key)"
)


def private_targets_notice(options: Options) -> str:
    """What `bulkapi serve` says about URL jobs and webhooks to this machine's own services."""
    if options.private_targets:
        return "allowed (URL jobs and webhooks may reach http://localhost, 127.0.0.1 and [::1]: the API is on loopback)"
    if not is_loopback(options.host):
        return (
            f"off: the API listens on {options.host}, so URL jobs and webhooks reach public https addresses only "
            "(as deployed); listen on 127.0.0.1 to allow localhost targets"
        )
    return "off (BULKAPI_ALLOW_PRIVATE_TARGETS=false): public https addresses only, as deployed"


def state_file(port: int) -> Path:
    """Where a running `bulkapi serve` on `port` tells admin commands how to reach its emulation."""
    return CACHE / f"local-runtime-{port}.json"


def write_private(path: Path, data: dict[str, object]) -> None:
    """Write JSON readable and writable by this user only (mode 0600, from the first byte on)."""
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out)
    os.chmod(tmp, 0o600)  # an existing file keeps its mode through O_CREAT
    tmp.replace(path)


def serve(host: str, port: int, template: str | None = None) -> int:
    """Start the local runtime and block until SIGINT/SIGTERM."""
    from local.iam import TemplateError
    from local.resources import check_template

    options = Options.from_env(host, port)
    if template is not None:
        try:
            options.template = json.loads(Path(template).read_text())
            check_template(options.template)
        except (OSError, ValueError, TemplateError) as exc:
            print(f"bulkapi: cannot run the template {template}: {exc}", file=sys.stderr, flush=True)
            return 2
    runtime = LocalRuntime(options)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("bulkapi: starting the local runtime (the first start synthesizes the CDK stack)...", flush=True)
    runtime.start()
    print(
        f"bulkapi is ready\n"
        f"  API:           {runtime.base_url}\n"
        f"  console:       {runtime.base_url}/console   (paste the API key there)\n"
        f"  docs:          {runtime.base_url}/api/docs\n"
        f"  API key:       {runtime.api_key}\n"
        f"  CLI:           export BULKAPI_URL={runtime.base_url} BULKAPI_KEY={runtime.api_key}\n"
        f"  S3 endpoint:   {runtime.endpoint}   (signed requests only: keys in the credentials file)\n"
        f"  credentials:   {state_file(runtime.port)}\n"
        f"  upload bucket: {runtime.bucket}   (drop CSVs at drop/acct_dev/<type>/<name>.csv)\n"
        f"  jobs table:    {runtime.table}\n"
        f"  try:           curl -H 'Authorization: Bearer {runtime.api_key}' {runtime.base_url}/api/health\n"
        f"  state:         {STATE_NOTICE}\n"
        f"  private URLs:  {private_targets_notice(runtime.options)}\n"
        f"Ctrl-C stops everything.",
        flush=True,
    )
    state = state_file(runtime.port)
    assert runtime.emulation is not None
    write_private(
        state,
        {
            **{
                "endpoint": runtime.endpoint,
                # The runtime's keys (random per start): the only ones besides the functions' the emulation accepts.
                "access_key_id": runtime.emulation.access_key_id,
                "secret_access_key": runtime.emulation.secret,
                "table": runtime.table,
                "bucket": runtime.bucket,
                "base_url": runtime.base_url,
                "pid": os.getpid(),
                # How long the API keeps a checked key: what `admin revoke-key` reports.
                "key_cache_seconds": load(ApiSettings, runtime.function_env(API_HANDLER)).key_cache_seconds,
            }
        },
    )
    try:
        stop.wait()
    finally:
        print("bulkapi: stopping", flush=True)
        state.unlink(missing_ok=True)
        runtime.stop()
    return 0


def _key_cache_seconds(table: str | None, port: int) -> float:
    """How long API instances may keep accepting a key after it is checked: the local runtime's setting, or the
    deployed default (the stack does not change it)."""
    if not table and state_file(port).exists():
        state = json.loads(state_file(port).read_text())
        if "key_cache_seconds" in state:
            return float(state["key_cache_seconds"])
    return float(ApiSettings.model_fields["key_cache_seconds"].default)


def _admin_stores(table: str | None, region: str | None, port: int) -> tuple[AccountStore, CreditStore]:
    """The account and credit stores on the jobs table of a deployed stack (`--table`, AWS credentials) or of the
    running `bulkapi serve`."""
    if table:
        ddb = boto3.client("dynamodb", region_name=region)
        return AccountStore(table, client=ddb), CreditStore(table, client=ddb)
    path = state_file(port)
    if not path.exists():
        raise SystemExit(
            f"no bulkapi serve is running on port {port} (looked for {path}): start one, or pass the port it printed "
            "with --port N (or BULKAPI_URL=http://127.0.0.1:N), or --table for a deployed stack"
        )
    state = json.loads(path.read_text())
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=state["endpoint"],
        region_name="us-east-1",
        aws_access_key_id=state["access_key_id"],
        aws_secret_access_key=state["secret_access_key"],
    )
    return AccountStore(state["table"], client=ddb), CreditStore(state["table"], client=ddb)


def _usage_key(args: argparse.Namespace, account_id: str) -> str:
    from local.usage_keys import ensure_usage_key

    return ensure_usage_key(boto3.client("apigateway", region_name=args.region), args.usage_plan, account_id)


def running_port(given: int | None) -> int:
    """The port of the `bulkapi serve` the admin commands manage: `--port`, else BULKAPI_PORT, else the port of
    BULKAPI_URL (what the customer commands use), else the one serve running on this machine, else 8080."""
    if given is not None:
        return given
    if os.environ.get("BULKAPI_PORT"):
        return int(os.environ["BULKAPI_PORT"])
    url = urllib.parse.urlsplit(os.environ.get("BULKAPI_URL", ""))
    if url.hostname and url.port:
        return url.port
    running = [port for port in _running_ports() if port is not None]
    return running[0] if len(running) == 1 else 8080


def _running_ports() -> list[int | None]:
    """The ports of the `bulkapi serve` processes on this machine whose state file names a live process."""
    ports: list[int | None] = []
    for path in sorted(CACHE.glob("local-runtime-*.json")):
        try:
            pid = int(json.loads(path.read_text())["pid"])
            os.kill(pid, 0)
            ports.append(int(path.stem.rsplit("-", 1)[1]))
        except (OSError, ValueError, KeyError):
            continue
    return ports


def admin(args: argparse.Namespace) -> int:
    """Accounts and keys, locally or against a deployed stack."""
    args.port = running_port(args.port)
    store, credits = _admin_stores(args.table, args.region, args.port)
    try:
        if args.admin_command == "create-account":
            account_id = accounts.create_account(store, args.name, args.credits)
            created = {"account_id": account_id, "name": args.name, "credits": args.credits}
            if args.usage_plan:
                created["usage_key_id"] = _usage_key(args, account_id)
            print(json.dumps(created))
        elif args.admin_command == "usage-key":
            print(json.dumps({"account_id": args.account, "usage_key_id": _usage_key(args, args.account)}))
        elif args.admin_command == "create-key":
            issued = accounts.create_key(store, credits, args.account, test_mode=args.test)
            print(json.dumps({"key_id": issued.key_id, "account_id": issued.account_id, "api_key": issued.api_key}))
            print("store the api_key now: it is kept only as a hash and cannot be shown again", file=sys.stderr)
        elif args.admin_command == "revoke-key":
            cache = _key_cache_seconds(args.table, args.port)
            revoked = accounts.revoke_key(store, args.key_id, key_cache_seconds=cache)
            print(
                json.dumps(
                    {
                        "key_id": revoked.key_id,
                        "account_id": revoked.account_id,
                        "revoked": True,
                        "revoked_at": revoked.revoked_at,
                        "rejected_everywhere_by": revoked.rejected_everywhere_by,
                    }
                )
            )
            print(
                f"new requests are refused now; API instances that checked this key in the last {cache:g} s may "
                f"accept it until {revoked.rejected_everywhere_by} (their key cache)",
                file=sys.stderr,
            )
        elif args.admin_command == "add-credits":
            balance = accounts.add_credits(credits, args.account, args.credits)
            print(json.dumps({"account_id": args.account, "added": args.credits, "balance": balance}))
        elif args.admin_command == "list-accounts":
            print(json.dumps({"accounts": accounts.list_accounts(store)}))
        elif args.admin_command == "list-keys":
            print(json.dumps({"account_id": args.account, "keys": accounts.list_keys(store, credits, args.account)}))
    except BulkApiError as exc:
        print(json.dumps(exc.body()), file=sys.stderr)
        return 1
    return 0


def iam_report(reset: bool, as_json: bool) -> int:
    """Print, per function role, the grants no recorded run of the local runtime used."""
    from local import iam
    from local.runtime import USAGE_DIR

    paths = sorted(USAGE_DIR.glob("*.json")) if USAGE_DIR.exists() else []
    if not paths:
        print(f"no usage recorded yet in {USAGE_DIR}: run the tests (or bulkapi serve) first", file=sys.stderr)
        return 1
    report = iam.unused_grants(iam.load_records(paths))
    print(json.dumps(report, indent=1) if as_json else iam.format_report(report))
    print(f"({len(paths)} recorded runs in {USAGE_DIR})", file=sys.stderr)
    if reset:
        for path in paths:
            path.unlink(missing_ok=True)
    return 0


def _target_options(parser: argparse.ArgumentParser, default: str | None) -> None:
    """--table, --region, --port: which jobs table the admin commands work on. With `default` SUPPRESS (the
    subcommands' copy), an option left out there does not overwrite what was given before the subcommand."""

    def pick(value: object) -> object:
        return default if default is not None else value

    parser.add_argument(
        "--table", default=pick(None), help="jobs table of a deployed stack (default: the running bulkapi serve)"
    )
    parser.add_argument("--region", default=pick(os.environ.get("AWS_REGION")))
    parser.add_argument(
        "--port",
        type=int,
        default=pick(None),
        help="port of the local bulkapi serve to manage (default: BULKAPI_PORT, the port of BULKAPI_URL, the one "
        "running serve, else 8080)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line: serve, and the admin commands."""
    parser = argparse.ArgumentParser(prog="bulkapi", description="bulk enrichment API: local runtime")
    parser.add_argument("--version", action="version", version=f"bulkapi {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run the API locally (embedded AWS emulation, no Docker)")
    p_serve.add_argument("--host", default=os.environ.get("BULKAPI_HOST", "127.0.0.1"))
    p_serve.add_argument("--port", type=int, default=int(os.environ.get("BULKAPI_PORT", "8080")))
    p_serve.add_argument(
        "--template", help="run this synthesized template (cdk synth output) instead of synthesizing the app"
    )
    sub.add_parser("openapi", help="print the API's OpenAPI 3.1 document (bulkapi openapi > openapi.json)")
    p_report = sub.add_parser(
        "iam-report", help="per function role: the granted actions no recorded local run used (least privilege)"
    )
    p_report.add_argument("--reset", action="store_true", help="delete the records after printing")
    p_report.add_argument("--json", action="store_true", help="print JSON")
    p_admin = sub.add_parser("admin", help="manage accounts, credits and API keys")
    _target_options(p_admin, None)
    # The same options after the subcommand (`admin create-account Acme --port 8290`); given there, they win.
    target = argparse.ArgumentParser(add_help=False)
    _target_options(target, argparse.SUPPRESS)
    admin_sub = p_admin.add_subparsers(dest="admin_command", required=True)
    p_acct = admin_sub.add_parser("create-account", parents=[target], help="create an account with a starting balance")
    p_acct.add_argument("name")
    p_acct.add_argument("--credits", type=int, default=0)
    p_acct.add_argument("--usage-plan", help="deployed stack: also create the account's usage plan key (UsagePlanId)")
    p_usage = admin_sub.add_parser(
        "usage-key", parents=[target], help="deployed stack: put an account's API key in the usage plan"
    )
    p_usage.add_argument("account")
    p_usage.add_argument("--usage-plan", required=True, help="the stack's UsagePlanId output")
    p_key = admin_sub.add_parser("create-key", parents=[target], help="issue an API key for an account (printed once)")
    p_key.add_argument("account")
    p_key.add_argument("--test", action="store_true", help="an enc_test_ key instead of enc_live_")
    p_revoke = admin_sub.add_parser("revoke-key", parents=[target], help="revoke an API key by its key id")
    p_revoke.add_argument("key_id")
    p_add = admin_sub.add_parser(
        "add-credits", parents=[target], help="add credits to an account (a grant entry in its ledger)"
    )
    p_add.add_argument("account")
    p_add.add_argument("credits", type=int)
    admin_sub.add_parser("list-accounts", parents=[target], help="every account with its balance")
    p_keys = admin_sub.add_parser("list-keys", parents=[target], help="an account's key ids, revoked ones marked")
    p_keys.add_argument("account")
    client_cli.add_commands(sub)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("bulkapi")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "0+unknown"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = build_parser()
    # Tab completion (`eval "$(register-python-argcomplete bulkapi)"`, README): answers and exits when the shell asks.
    argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    if args.command in client_cli.COMMANDS:
        return client_cli.run(args)
    if args.command == "serve":
        return serve(args.host, args.port, args.template)
    if args.command == "iam-report":
        return iam_report(args.reset, args.json)
    if args.command == "admin":
        return admin(args)
    if args.command == "openapi":
        from functions.handlers import api

        # Not sorted: a status's media types stay in the order generators take the first of (the file before its link).
        print(json.dumps(api.document(), indent=2))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
