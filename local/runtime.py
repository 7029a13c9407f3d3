"""The local runtime: moto in server mode on loopback, the stack's resources, the wiring, the API."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import threading
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from botocore.config import Config

from functions.settings import FUNCTION_SETTINGS, PREFIX, StreamSettings, env_names, load
from local import lambdas
from local.authorizer import LocalAuthorizers
from local.emulation import EmulationProcess
from local.gateway import Gateway
from local.resources import ACCOUNT, REGION, LocalSchedule, ResourceBuilder, Topology
from local.template import load_template
from local.wiring import Poller

DEV_ACCOUNT = "acct_dev"
API_HANDLER = "functions.handlers.api.lambda_handler"
# The stream function's Lambda handler is its start script (uvicorn behind the Lambda Web Adapter; infra/streaming.py).
STREAM_HANDLER = "functions/run.sh"


def settings_model(handler: str) -> type[Any] | None:
    """The settings model a function's handler reads (its template environment is derived from it); None for
    functions that are not the project's (CDK's own helpers)."""
    if handler == STREAM_HANDLER:
        return FUNCTION_SETTINGS["stream"]
    return FUNCTION_SETTINGS.get(handler.removeprefix("functions.handlers.").removesuffix(".lambda_handler"))


# What `bulkapi serve` uses: the queue-driven handlers in processes of their own, like Lambda environments.
DEFAULT_PROCESSES = 2
# Overrides that are also CDK context, because they change the template as well as a function's setting.
TEMPLATE_CONTEXT = {"BULKAPI_CORS_ORIGINS": "bulkapi:corsOrigins"}


@dataclass
class Options:
    """How to run locally; each has an environment variable (see README)."""

    host: str = "127.0.0.1"
    port: int = 8080
    dev_token: str | None = None
    dev_credits: int = 100_000
    dev_webhook_url: str | None = None
    concurrency_cap: int = 4
    # Worker (and dead-letter) processes; the splitter and the finalizer get one each (0: all in this process).
    processes: int = 0
    visibility_timeout: int = 30
    retry_delay: int = 1
    poll_wait_seconds: int = 5
    # Runs every schedule rule this often instead of at its rate (None: at its rate, as deployed).
    schedule_seconds: float | None = None
    # Replaces the authorizers' cache TTL from the template (None: as deployed, 30 s).
    authorizer_cache_seconds: int | None = None
    # Test hook: every delivery of this work batch number fails, as if the worker raised on it (poison).
    poison_batch: int | None = None
    # Test hook: while this file exists, splitter invocations wait (a splitter backlog, made deterministic).
    hold_splitter: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def private_targets(self) -> bool:
        """Whether URL jobs and webhooks may reach loopback services: only while the API itself listens on loopback
        (a remote caller of an API bound to 0.0.0.0 would otherwise read this machine's services through URL jobs),
        and unless BULKAPI_ALLOW_PRIVATE_TARGETS=false asks for the deployed rules."""
        return is_loopback(self.host) and self.overrides.get("BULKAPI_ALLOW_PRIVATE_TARGETS", "true").lower() != "false"

    @classmethod
    def from_env(cls, host: str, port: int) -> Options:
        """Options from BULKAPI_* environment variables; BULKAPI_<SETTING> overrides a function setting."""
        env = os.environ
        # A function setting's variable (some are local test hooks, e.g. BULKAPI_LOCAL_ENRICH_DELAY_MS), not an option.
        settings = {var for model in FUNCTION_SETTINGS.values() for var in env_names(model).values()}
        overrides = {k: v for k, v in env.items() if k in settings}
        return cls(
            host=host,
            port=port,
            dev_token=env.get("BULKAPI_DEV_TOKEN") or None,
            dev_credits=int(env.get("BULKAPI_DEV_CREDITS", "100000")),
            dev_webhook_url=env.get("BULKAPI_DEV_WEBHOOK_URL") or None,
            concurrency_cap=int(env.get("BULKAPI_LOCAL_CONCURRENCY", "4")),
            processes=int(env.get("BULKAPI_LOCAL_PROCESSES", str(DEFAULT_PROCESSES))),
            retry_delay=int(env.get("BULKAPI_LOCAL_RETRY_DELAY", "1")),
            schedule_seconds=float(env["BULKAPI_LOCAL_SCHEDULE_SECONDS"])
            if env.get("BULKAPI_LOCAL_SCHEDULE_SECONDS")
            else None,
            authorizer_cache_seconds=int(env["BULKAPI_LOCAL_AUTHORIZER_CACHE_SECONDS"])
            if env.get("BULKAPI_LOCAL_AUTHORIZER_CACHE_SECONDS")
            else None,
            poison_batch=int(env["BULKAPI_LOCAL_POISON_BATCH"]) if env.get("BULKAPI_LOCAL_POISON_BATCH") else None,
            hold_splitter=env.get("BULKAPI_LOCAL_HOLD_SPLITTER") or None,
            overrides=overrides,
        )

    def template_context(self) -> dict[str, str]:
        """CDK context for the local synth: a setting that shapes the stack, not only a function (CORS origins also
        add the API's preflight methods, which the local gateway then answers as API Gateway does)."""
        return {key: self.overrides[var] for var, key in TEMPLATE_CONTEXT.items() if self.overrides.get(var)}


def is_loopback(host: str) -> bool:
    """Whether `--host` is a loopback address (or `localhost`): only this machine can reach the API."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def scheduled_event(rule_arn: str) -> dict[str, Any]:
    """The event EventBridge delivers for a schedule rule (detail-type "Scheduled Event")."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [rule_arn],
        "detail": {},
    }


class InvokeEndpoint:
    """Where the emulation process sends Lambda invocations (Step Functions tasks) to run the real handlers here."""

    def __init__(self) -> None:
        self.invoker: lambdas.Invoker | None = None
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if endpoint.invoker is None:
                    payload, errored = json.dumps({"errorMessage": "not ready", "errorType": "ServiceException"}), True
                else:
                    payload, errored = endpoint.invoker.invoke_by_name(request["function"], request["event"])
                body = json.dumps({"payload": payload, "errored": errored}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/invoke"
        threading.Thread(target=self.server.serve_forever, name="invoke-endpoint", daemon=True).start()

    def stop(self) -> None:
        """Stop serving."""
        self.invoker = None
        self.server.shutdown()
        self.server.server_close()


class LocalRuntime:
    """Starts everything `bulkapi serve` needs, in one process; stop() ends it all."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.api_key = options.dev_token or "enc_test_" + secrets.token_urlsafe(24)
        self.emulation: EmulationProcess | None = None
        self.invoke_endpoint: InvokeEndpoint | None = None
        self.pollers: list[Poller] = []
        self.schedules: list[threading.Thread] = []
        self._schedules_stop = threading.Event()
        self.gateway: Gateway | None = None
        self.topology: Topology | None = None
        self.invoker: lambdas.Invoker | None = None
        self.endpoint = ""
        self._saved_env: dict[str, str | None] = {}
        self.dev_webhook_secret: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> LocalRuntime:
        """Start the emulation, create the resources, start the wiring and the API; returns when ready."""
        # Metrics are disabled locally; Powertools still warns on every flush with nothing in it.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        template = load_template(self.options.template_context())
        self._start_moto()
        topology = ResourceBuilder(template, self.client, self.options.visibility_timeout).build()
        self.topology = topology
        self._apply_function_env(topology)
        self.invoker = lambdas.Invoker(
            topology.functions,
            processes=self.options.processes,
            poison_batch=self.options.poison_batch,
            hold_splitter=self.options.hold_splitter,
        )
        assert self.invoke_endpoint is not None
        self.invoke_endpoint.invoker = self.invoker
        self._seed_dev_account()
        sqs = self.client("sqs")
        for mapping in topology.mappings:
            cap = self.options.concurrency_cap
            if self.invoker.isolated(topology.functions[mapping.function]):
                # Taking more messages than there are processes to run them only makes them wait, invisible.
                cap = min(cap, self.invoker.pool_size(topology.functions[mapping.function]))
            poller = Poller(
                mapping,
                self.invoker,
                sqs,
                concurrency_cap=cap,
                retry_delay=self.options.retry_delay,
                wait_seconds=self.options.poll_wait_seconds,
            )
            poller.start()
            self.pollers.append(poller)
        for schedule in topology.schedules:
            self._start_schedule(schedule)
        api = self.function_id(API_HANDLER)
        from functions.handlers import stream

        stream_id = self.function_id(STREAM_HANDLER)

        authorizers = LocalAuthorizers.from_template(template, {lid: lid for lid in topology.functions})
        if self.options.authorizer_cache_seconds is not None:
            authorizers.override_ttl(self.options.authorizer_cache_seconds)
        self.gateway = Gateway(
            self.options.host,
            self.options.port,
            self.invoker,
            api,
            asgi_app=stream.create_app(
                stream.Deps.from_settings(load(StreamSettings, self.topology.functions[stream_id].env))
            ),
            asgi_paths=stream.PATHS,
            authorizers=authorizers,
        )
        self.gateway.start()
        # Webhook payloads link to the download route; the port is only known once the gateway is bound.
        if "BULKAPI_API_BASE_URL" not in self.options.overrides:
            for fn in topology.functions.values():
                if "BULKAPI_API_BASE_URL" in fn.env:
                    fn.env["BULKAPI_API_BASE_URL"] = self.base_url
        return self

    def stop(self) -> None:
        """Stop the API, the pollers and the emulation, and restore the environment."""
        if self.gateway is not None:
            self.gateway.stop()
        self._schedules_stop.set()
        for poller in self.pollers:
            poller.stop()
        if self.invoke_endpoint is not None:
            self.invoke_endpoint.stop()
        if self.invoker is not None:
            self.invoker.close()
        if self.emulation is not None:
            self.emulation.stop()
        for var, value in self._saved_env.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- pieces ------------------------------------------------------------------------------------------------
    def _set_env(self, values: dict[str, str]) -> None:
        for var, value in values.items():
            self._saved_env.setdefault(var, os.environ.get(var))
            os.environ[var] = value

    def _start_moto(self) -> None:
        # moto runs in its own process: its request handling then uses the second core instead of taking
        # the GIL from the handlers (measured in bench/e2e.py; see the commit that introduced it).
        self.invoke_endpoint = InvokeEndpoint()
        self.emulation = EmulationProcess(self.invoke_endpoint.url)
        self.emulation.start()
        self.endpoint = self.emulation.endpoint
        self._set_env(
            {
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
            }
        )
        # The adapters cache clients; a new endpoint needs new clients.
        from functions.adapters.aws import client as cached_client

        cached_client.cache_clear()

    def client(self, service: str) -> Any:
        """A boto3 client pointed at the emulation."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the emulation accepts any credentials
            config=Config(retries={"max_attempts": 3}),
        )

    def _start_schedule(self, schedule: LocalSchedule) -> None:
        # moto never fires schedule rules: a timer invokes the target as EventBridge would, first after one interval.
        interval = self.options.schedule_seconds or schedule.seconds

        def run() -> None:
            while not self._schedules_stop.wait(interval):
                assert self.invoker is not None
                try:
                    self.invoker.invoke(schedule.function, scheduled_event(schedule.rule_arn))
                except lambdas.InvocationError:
                    pass  # printed by the invoker; the next tick runs again, like the deployed schedule

        thread = threading.Thread(target=run, name=f"schedule-{schedule.function}", daemon=True)
        thread.start()
        self.schedules.append(thread)

    def _apply_function_env(self, topology: Topology) -> None:
        # Each function is composed from exactly its template environment (functions/composition.py), plus what
        # differs locally for the settings it declares: webhooks and URL fetches may go to localhost (only while the
        # API listens on loopback), and the BULKAPI_<SETTING> overrides. No function sees another's settings.
        private = "true" if self.options.private_targets else "false"
        local = {**self.options.overrides, "BULKAPI_ALLOW_PRIVATE_TARGETS": private}
        if self.options.overrides.get("BULKAPI_ALLOW_PRIVATE_TARGETS", "").lower() == "true" and private == "false":
            print(
                f"warning: BULKAPI_ALLOW_PRIVATE_TARGETS=true is ignored: the API listens on {self.options.host}, "
                "not on loopback",
                flush=True,
            )
        used: set[str] = set()
        shared: dict[str, str] = {}
        for fn in topology.functions.values():
            model = settings_model(fn.handler)
            declared = set(fn.env) | (set(env_names(model).values()) if model else set())
            env = {var: value for var, value in fn.env.items() if not var.startswith("AWS_")}
            env.update({var: value for var, value in local.items() if var in declared})
            used |= declared & set(local)
            fn.env = env
            # Powertools reads its own variables once per process (at import): those must mean one thing.
            for var, value in env.items():
                if not var.startswith(PREFIX):
                    if shared.setdefault(var, value) != value:
                        raise RuntimeError(f"{var} differs between functions ({shared[var]!r} vs {value!r})")
        for var in sorted(set(self.options.overrides) - used):
            print(f"warning: {var} is a setting of no function; ignored", flush=True)
        self._set_env(shared)

    def _seed_dev_account(self) -> None:
        from functions.adapters.accounts import AccountStore
        from functions.logic.jobs import utcnow

        store = AccountStore(self.table)
        store.create_account(DEV_ACCOUNT, "Local developer", self.options.dev_credits, utcnow())
        store.put_api_key(self.api_key, DEV_ACCOUNT, "key_dev", utcnow())
        if self.options.dev_webhook_url:
            from functions.adapters.webhook_http import WebhookHttp
            from functions.adapters.webhooks import WebhookStore
            from functions.logic.endpoints import create_endpoint

            created = create_endpoint(
                WebhookStore(self.table),
                DEV_ACCOUNT,
                {"url": self.options.dev_webhook_url},
                targets=WebhookHttp(allow_private=self.options.private_targets),
            )
            self.dev_webhook_secret = created["secret"]

    # -- lookups -----------------------------------------------------------------------------------------------
    def function_id(self, handler: str) -> str:
        """The logical id of the function with this handler."""
        assert self.topology is not None
        return next(lid for lid, fn in self.topology.functions.items() if fn.handler == handler)

    @property
    def port(self) -> int:
        """The port the API listens on (the one chosen when `--port 0` asked for any free port)."""
        assert self.gateway is not None
        return self.gateway.port

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return f"http://{self.options.host}:{self.port}"

    @property
    def bucket(self) -> str:
        """The upload bucket (as the API function is configured with it)."""
        return self.function_env(API_HANDLER)["BULKAPI_BUCKET"]

    @property
    def table(self) -> str:
        """The jobs table (as the API function is configured with it)."""
        return self.function_env(API_HANDLER)["BULKAPI_JOBS_TABLE"]

    def function_env(self, handler: str) -> dict[str, str]:
        """The environment the function with this handler is composed from."""
        assert self.topology is not None
        return self.topology.functions[self.function_id(handler)].env
