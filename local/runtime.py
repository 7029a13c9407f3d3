"""The local runtime: moto in server mode on loopback, the stack's resources, the wiring, the API."""

from __future__ import annotations

import hmac
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
from local import iam, lambdas
from local.emulation import INVOKE_TOKEN_HEADER, EmulationProcess, new_keys
from local.gateway import Gateway
from local.gateway_authorizers import LocalAuthorizers
from local.resources import ACCOUNT, REGION, LocalSchedule, ResourceBuilder, Topology, check_template
from local.stream_function import StreamFunction
from local.template import CACHE, load_template
from local.wiring import AsyncInvocations, Poller

DEV_ACCOUNT = "acct_dev"
# Where each run leaves what its functions used (`bulkapi iam-report` reads them).
USAGE_DIR = CACHE / "iam-usage"
API_HANDLER = "functions.handlers.api.lambda_handler"
STREAM_HANDLER = lambdas.STREAM


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
    # As Lambda's event source mapping long-polls (20 s): an idle poller asks 3 times a minute, not 12.
    poll_wait_seconds: int = 20
    # Runs every schedule rule this often instead of at its rate (None: at its rate, as deployed).
    schedule_seconds: float | None = None
    # Replaces the authorizers' cache TTL from the template (None: as deployed, 30 s).
    authorizer_cache_seconds: int | None = None
    # Test hook: every delivery of this work batch number fails, as if the worker raised on it (poison).
    poison_batch: int | None = None
    # Test hook: while this file exists, splitter invocations wait (a splitter backlog, made deterministic).
    hold_splitter: str | None = None
    # Every function's Timeout is multiplied by this (a slow machine may need more time; never 0: it never turns
    # them off; local/lambdas.py MAX_TIMEOUT_FACTOR is the largest).
    timeout_factor: float = 1.0
    # Test hook: faults injected into functions' invocations (local/lambdas.py parse_faults), e.g. "webhooks:raise".
    fault: str = ""
    overrides: dict[str, str] = field(default_factory=dict)
    # A synthesized template to run instead of synthesizing one (`bulkapi serve --template`).
    template: dict[str, Any] | None = None

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
            timeout_factor=float(env.get("BULKAPI_LOCAL_TIMEOUT_FACTOR") or 1.0),
            fault=env.get("BULKAPI_LOCAL_FAULT", ""),
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
    """Where the emulation process sends Lambda invocations (Step Functions tasks) to run the real handlers here.

    Only the emulation may call it: every request carries the token the runtime handed the emulation process in its
    environment (readable by this user only). Anything else on the machine that finds the port, a web page included,
    gets 403 and runs nothing (before, any local process or page could run the finalizer with an event of its choice).
    """

    def __init__(self) -> None:
        self.invoker: lambdas.Invoker | None = None
        self.token = secrets.token_urlsafe(32)
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _refuse(self) -> None:
                self.send_response(403)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

            def do_POST(self) -> None:
                offered = self.headers.get(INVOKE_TOKEN_HEADER, "")
                if not hmac.compare_digest(offered.encode(), endpoint.token.encode()):
                    self._refuse()
                    return
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
        self.asynchronous: AsyncInvocations | None = None
        self.schedules: list[threading.Thread] = []
        self._schedules_stop = threading.Event()
        self.gateway: Gateway | None = None
        self.stream_function: StreamFunction | None = None
        self.topology: Topology | None = None
        self.invoker: lambdas.Invoker | None = None
        self.endpoint = ""
        self._saved_env: dict[str, str | None] = {}
        self.dev_webhook_secret: str | None = None
        self.principals: list[iam.Principal] = []
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> LocalRuntime:
        """Start the emulation, create the resources, start the wiring and the API; returns when ready."""
        # Metrics are disabled locally; Powertools still warns on every flush with nothing in it.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        template = self.options.template or load_template(self.options.template_context())
        check_template(template)
        self._start_moto()
        builder = ResourceBuilder(template, self.client, self.options.visibility_timeout)
        topology = builder.build()
        self.topology = topology
        self._apply_function_env(topology)
        self._register_principals(template, builder)
        self.invoker = lambdas.Invoker(
            topology.functions,
            processes=self.options.processes,
            poison_batch=self.options.poison_batch,
            hold_splitter=self.options.hold_splitter,
            timeout_factor=self.options.timeout_factor,
            faults=self.options.fault,
        )
        assert self.invoke_endpoint is not None
        self.invoke_endpoint.invoker = self.invoker
        self._seed_dev_account()
        sqs = self.client("sqs")
        self.asynchronous = AsyncInvocations(
            self.invoker, self.client, self.options.retry_delay, function_clients=self.function_client
        )
        for mapping in topology.mappings:
            cap = self.options.concurrency_cap
            if self.invoker.isolated(topology.functions[mapping.function]):
                # Taking more messages than there are processes to run them only makes them wait, invisible.
                cap = min(cap, self.invoker.pool_size(topology.functions[mapping.function]))
            poller = Poller(
                mapping,
                self.invoker,
                # Lambda's event source mapping reads the queue with the function's role; a shadow queue (S3 or
                # EventBridge -> Lambda, which AWS delivers itself) is the runtime's.
                self.function_client("sqs", mapping.function) if mapping.kind == "sqs" else sqs,
                concurrency_cap=cap,
                retry_delay=self.options.retry_delay,
                wait_seconds=self.options.poll_wait_seconds,
                asynchronous=self.asynchronous,
            )
            poller.start()
            self.pollers.append(poller)
        for schedule in topology.schedules:
            self._start_schedule(schedule)
        api = self.function_id(API_HANDLER)
        from functions.handlers import stream

        stream_id = self.function_id(STREAM_HANDLER)
        stream_app = self._stream_function(stream_id, stream)

        authorizers = LocalAuthorizers.from_template(template, {lid: lid for lid in topology.functions})
        if self.options.authorizer_cache_seconds is not None:
            authorizers.override_ttl(self.options.authorizer_cache_seconds)
        self.gateway = Gateway(
            self.options.host,
            self.options.port,
            self.invoker,
            api,
            asgi_app=stream_app,
            asgi_paths=stream.PATHS,
            authorizers=authorizers,
        )
        self.gateway.start()
        # The web console (served by the API) posts large files straight to the bucket: the bucket's CORS rules allow
        # the API's origin, as deployed they allow the API's execute-api host.
        self._register_cors(template, builder, [self.base_url])
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
        if self.asynchronous is not None:
            self.asynchronous.stop()
        if self.invoke_endpoint is not None:
            self.invoke_endpoint.stop()
        if self.stream_function is not None:
            self.stream_function.close()
        if self.invoker is not None:
            self.invoker.close()
        if self.emulation is not None:
            self._save_usage()
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
        self.emulation = EmulationProcess(self.invoke_endpoint.url, self.invoke_endpoint.token)
        self.emulation.start()
        self.endpoint = self.emulation.endpoint
        self._set_env(
            {
                "AWS_ENDPOINT_URL": self.endpoint,
                # The runtime's own keys (random per start): this process and the operator's tools act with them.
                "AWS_ACCESS_KEY_ID": self.emulation.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.emulation.secret,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
            }
        )
        # The adapters cache clients; a new endpoint needs new clients.
        from functions.adapters.aws import clear_clients

        clear_clients()

    def client(self, service: str) -> Any:
        """A boto3 client pointed at the emulation, with the runtime's own keys (allowed everything); one per service
        (boto3 clients are thread-safe; building one takes ~15 ms, and a start asked for 26)."""
        assert self.emulation is not None
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(
                    service,
                    endpoint_url=self.endpoint,
                    region_name=REGION,
                    aws_access_key_id=self.emulation.access_key_id,
                    aws_secret_access_key=self.emulation.secret,
                    config=Config(retries={"max_attempts": 3}),
                )
            return self._clients[service]

    def function_client(self, service: str, logical_id: str) -> Any:
        """A boto3 client with a function's keys: it may do what the function's role allows, nothing more."""
        assert self.topology is not None
        env = self.topology.functions[logical_id].env
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            config=Config(retries={"max_attempts": 3}),
        )

    def _register_principals(self, template: dict[str, Any], builder: ResourceBuilder) -> None:
        # Each function gets keys of its own (random per start), in its environment as Lambda gives a function its
        # role's; the emulation checks every call made with them against the role's policies from the template.
        assert self.topology is not None and self.emulation is not None
        statements = iam.role_statements(template, builder.resolve)
        roles = iam.function_roles(template)
        principals = []
        for lid, fn in self.topology.functions.items():
            key_id, secret = new_keys(fn.handler.rsplit(".", 2)[-2] if "." in fn.handler else "fn")
            principals.append(iam.Principal(fn.name, roles[lid], key_id, secret, statements[roles[lid]]))
            fn.env.update({"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret})
        for _, res in builder.of_type("AWS::StepFunctions::StateMachine"):
            role = iam.role_of(res["Properties"].get("RoleArn"))
            if role is not None and role in statements:
                key_id, secret = new_keys("states")
                principals.append(iam.Principal("states", role, key_id, secret, statements[role]))
        self.principals = principals
        self.emulation.register(principals, {})

    def _register_cors(self, template: dict[str, Any], builder: ResourceBuilder, local_origins: list[str]) -> None:
        assert self.emulation is not None
        cors: dict[str, list[dict[str, Any]]] = {}
        for lid, res in builder.of_type("AWS::S3::Bucket"):
            rules = builder.resolve(res.get("Properties", {}).get("CorsConfiguration", {}).get("CorsRules", []))
            if rules:
                cors[builder.refs[lid]] = [
                    {**rule, "AllowedOrigins": [*rule.get("AllowedOrigins", []), *local_origins]} for rule in rules
                ]
        self.emulation.register([], cors)

    def _stream_function(self, logical_id: str, stream: Any) -> Any:
        """The stream function's ASGI app for the gateway: its own processes (execution environments), killed at
        its Timeout or MemorySize, as `bulkapi serve` runs every function; in the runtime's process when the
        runtime runs functions in-process (`processes` 0, the unit tests' in-process runtime)."""
        assert self.topology is not None and self.invoker is not None
        if self.options.processes <= 0:
            return self._as_function(logical_id, stream.create_app, StreamSettings, stream.Deps.from_settings)
        fn = self.topology.functions[logical_id]
        invoker = self.invoker
        self.stream_function = StreamFunction(
            fn, fn.timeout * invoker.timeout_factor, fault=lambda: invoker.take_fault(fn)
        )
        return self.stream_function

    def _as_function(self, logical_id: str, create: Any, settings: type[Any], deps: Any) -> Any:
        """An in-process ASGI function (the stream) built and run with its own keys, like the queue-driven ones."""
        assert self.topology is not None
        from functions.adapters.aws import credentials

        env = self.topology.functions[logical_id].env
        keys = env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
        with credentials(*keys):
            app = create(deps(load(settings, env)))

        async def as_its_role(scope: Any, receive: Any, send: Any) -> None:
            with credentials(*keys):
                await app(scope, receive, send)

        return as_its_role

    def _save_usage(self) -> None:
        # What each function used, for `bulkapi iam-report` (least privilege measured over every run, tests included).
        try:
            assert self.emulation is not None
            usage = self.emulation.usage()
        except (OSError, AssertionError, ValueError):
            return
        assert self.topology is not None
        roles = {p.name: p.role for p in self.principals}
        sources: dict[str, list[str]] = {}
        for mapping in self.topology.mappings:
            if mapping.kind == "sqs":
                sources.setdefault(roles[self.topology.functions[mapping.function].name], []).append(mapping.queue_arn)
        usage["event_sources"] = sources
        # A run of a given template (a rehearsal, or a test's altered one) says what it used, not what the stack grants.
        usage["synthesized"] = self.options.template is None
        USAGE_DIR.mkdir(parents=True, exist_ok=True)
        target = USAGE_DIR / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{secrets.token_hex(3)}.json"
        target.write_text(json.dumps(usage))

    def _start_schedule(self, schedule: LocalSchedule) -> None:
        # moto never fires schedule rules: a timer invokes the target as EventBridge would (asynchronously, with the
        # function's retries), first after one interval.
        interval = self.options.schedule_seconds or schedule.seconds

        def run() -> None:
            while not self._schedules_stop.wait(interval):
                assert self.asynchronous is not None
                self.asynchronous.invoke(schedule.function, scheduled_event(schedule.rule_arn))

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
        from functions.logic.clock import utcnow

        store = AccountStore(self.table)
        store.create_account(DEV_ACCOUNT, "Local developer", self.options.dev_credits, utcnow())
        store.put_api_key(self.api_key, DEV_ACCOUNT, "key_dev", utcnow())
        if self.options.dev_webhook_url:
            from functions.adapters.webhook_http import WebhookHttp
            from functions.adapters.webhooks import WebhookStore
            from functions.logic.webhook_endpoints import create_endpoint

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
