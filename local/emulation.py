"""The AWS emulation: moto's server in its own process, so its work does not compete with the handlers for the GIL.

The handlers still run in the runtime's process. moto's Step Functions executor reaches them through
`LambdaFunction._invoke_lambda`, patched in the emulation process to POST the event back to the runtime's
invoke endpoint (a private moto API: moto is pinned in pyproject.toml and a test covers the patch).
Requests are counted by service and operation (for the benchmarks) at `/_bulkapi/requests`.

moto's server applies concurrent requests without a lock: 8 threads x 300 conditional `ADD`s on one DynamoDB item
lost about 7% of the increments, and concurrent SQS receives handed one message to two consumers. The emulation
therefore applies each request to a service whose state the project mutates one at a time (`AtomicDispatcher`).

In front of it all, `local.guard.Guard` lets in only requests signed by a principal the runtime made (the runtime
itself, each function's role, the state machine's role) and authorizes each against that principal's policies.
"""

from __future__ import annotations

import argparse
import collections
import copy
import gc
import importlib
import io
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs

from local.guard import PRINCIPAL_KEY, PRINCIPALS_PATH, TOKEN_HEADER, USAGE_PATH, Guard
from local.iam import Principal
from local.lifetime import exit_with_parent

COUNTS_PATH = "/_bulkapi/requests"


def classify(environ: dict[str, Any]) -> str | None:
    """`service.Operation` from the SigV4 scope and the target header / Action / method."""
    path = environ.get("PATH_INFO", "")
    if path.startswith(("/moto-api", "/_bulkapi")):
        return None
    auth = environ.get("HTTP_AUTHORIZATION", "")
    service = "unknown"
    if "Credential=" in auth:
        scope = auth.split("Credential=")[1].split(",")[0].split("/")
        service = scope[3] if len(scope) > 3 else "unknown"
    elif "X-Amz-Credential" in environ.get("QUERY_STRING", ""):
        service = "s3"
    elif environ.get("REQUEST_METHOD") == "POST" and environ.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
        # A browser-style upload through a presigned POST form: signed in its fields, not in a header.
        return "s3.PostObject"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return f"{service}.{target.split('.')[-1]}"
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if action:
        return f"{service}.{action[0]}"
    method = environ.get("REQUEST_METHOD", "GET")
    if service == "s3":
        query = environ.get("QUERY_STRING", "")
        ops = {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}
        op = "MultipartUpload" if "uploadId" in query or "uploads" in query else ops.get(method, method)
        return f"s3.{op}"
    return f"{service}.{method} {path.split('/')[1] if '/' in path else path}"


class CountingApp:
    """WSGI middleware counting requests; GET /_bulkapi/requests returns the counts, DELETE resets them. With
    `?by=principal` the counts come by who signed them (local/guard.py names the principal in PRINCIPAL_KEY): the
    runtime's own requests are its glue (polling the shadow queues that stand in for S3's and EventBridge's delivery
    to Lambda), which AWS does itself and a deployment is not charged for."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.counts: collections.Counter[str] = collections.Counter()
        self.by_principal: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == COUNTS_PATH:
            by_principal = "by=principal" in str(environ.get("QUERY_STRING", ""))
            with self.lock:
                counts = {name: dict(c) for name, c in self.by_principal.items()} if by_principal else self.counts
                body = json.dumps(counts).encode()
                if environ.get("REQUEST_METHOD") == "DELETE":
                    self.counts.clear()
                    self.by_principal.clear()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        key = classify(environ)
        if key:
            with self.lock:
                self.counts[key] += 1
                self.by_principal[str(environ.get(PRINCIPAL_KEY, "unsigned"))][key] += 1
        return self.app(environ, start_response)


# The services whose state the project changes concurrently. Lambda is left out: an invocation runs a handler
# for up to its timeout, and the handler itself calls the others.
ATOMIC_SERVICES = frozenset({"dynamodb", "sqs", "s3", "stepfunctions", "events"})


class AtomicDispatcher:
    """Runs each request to an `ATOMIC_SERVICES` backend under one lock, as one step, like the real services.

    One lock for all of them, not one per service, because moto calls across services inside a request (an S3
    write or an EventBridge put sends to SQS in-process). An SQS long poll gives the lock up while it waits
    (`release_while_waiting`), so it holds up nobody. The request body is read before the lock is taken, so a
    slow upload does not hold up the others either. The cost, measured with bench/e2e.py, is in the commit.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.held = threading.local()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        backend = self.app.get_application(environ)
        if getattr(backend, "service", None) not in ATOMIC_SERVICES:
            return backend(environ, start_response)  # type: ignore[no-any-return]
        _buffer_body(environ)
        with self.lock:
            self.held.lock = True
            try:
                return backend(environ, start_response)  # type: ignore[no-any-return]
            finally:
                self.held.lock = False

    def release_while_waiting(self, wait: Callable[[], None]) -> None:
        """Run `wait` without the lock when this thread holds it (an SQS long poll inside a request)."""
        if not getattr(self.held, "lock", False):
            wait()
            return
        self.lock.release()
        try:
            wait()
        finally:
            self.lock.acquire()


# A request with a body at least this large has its garbage collected once it is answered (`LargeBodies`).
LARGE_BODY_BYTES = 4 * 1024 * 1024


class LargeBodies:
    """Frees a large request's body as soon as the request is answered, not whenever the collector next runs.

    moto's server keeps each request's body in a reference cycle (its `BackendRequest`, body and all, through
    `_cached_data` and `data`), which only Python's cyclic collector frees, and that runs by counts of objects, not
    bytes: a result's 8 MiB parts piled up in the emulation until it ran (a 150 MB result: +200 MB before falling
    back), and a presigned upload's body stayed until then too. A full collection takes tens of milliseconds; a
    1,000,000-row job has about twenty requests this large (its upload and the result's parts).
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answer = self.app(environ, start_response)
        if int(environ.get("CONTENT_LENGTH") or 0) < LARGE_BODY_BYTES:
            return answer
        return _CollectedOnClose(answer)


class _CollectedOnClose:
    """A response that runs the cyclic collector once the server has sent it (WSGI calls `close`)."""

    def __init__(self, answer: Iterable[bytes]) -> None:
        self.answer = answer

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.answer)

    def close(self) -> None:
        close = getattr(self.answer, "close", None)
        if close is not None:
            close()
        gc.collect()


def _buffer_body(environ: dict[str, Any]) -> None:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length and not isinstance(environ.get("wsgi.input"), io.BytesIO):
        environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length))


def _patch_sqs_wait(dispatcher: AtomicDispatcher) -> None:
    from moto.sqs.models import Queue

    original = Queue.wait_for_messages

    def wait_for_messages(self: Any, timeout: int) -> None:
        dispatcher.release_while_waiting(lambda: original(self, timeout))

    Queue.wait_for_messages = wait_for_messages  # type: ignore[method-assign]


class _Assembled:
    """A completed multipart object, in a spool file rather than in memory (see `_patch_s3_multipart`)."""

    def __init__(self, spool: Any, size: int) -> None:
        self.spool, self.size = spool, size


def _patch_s3_multipart() -> None:
    """Complete a multipart upload without holding the object in memory.

    moto's `FakeMultipart.complete` joins the parts in memory three times over (the object, a copy of it, and the
    buffer of a whole-object checksum nobody asked for): a 220 MB result took 660 MB of the emulation's memory. Here the
    parts are streamed into a spool file that becomes the new object's storage (moto keeps objects over 5 MiB in temp
    files anyway). The part checks (InvalidPart, EntityTooSmall) and the `<md5 of the part md5s>-<count>` ETag stay
    as moto has them; no whole-object checksum is recorded. Private moto API: moto is pinned, and
    tests/integration/test_emulation_atomic.py covers the patch.
    """
    import codecs
    import hashlib
    import shutil
    import tempfile

    from moto import settings
    from moto.s3 import models
    from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML

    def complete(self: Any, body: Iterable[tuple[int, str]]) -> tuple[_Assembled, str, None]:
        md5s = bytearray()
        spool = tempfile.SpooledTemporaryFile(max_size=settings.get_s3_default_key_buffer_size())
        last, count, size = None, 0, 0
        for number, etag in body:
            part = self.parts.get(number)
            if part is None or part.etag.replace('"', "") != etag.replace('"', ""):
                raise InvalidPart()
            if last is not None and last.contentsize < settings.S3_UPLOAD_PART_MIN_SIZE:
                raise EntityTooSmall()
            md5s.extend(codecs.decode(part.etag.replace('"', ""), "hex"))
            with part.lock:
                part._value_buffer.seek(0)
                shutil.copyfileobj(part._value_buffer, spool, 1024 * 1024)
            size += part.contentsize
            last, count = part, count + 1
        if count == 0:
            raise MalformedXML()
        spool.seek(0)
        return _Assembled(spool, size), f"{hashlib.md5(bytes(md5s)).hexdigest()}-{count}", None  # noqa: S324 - S3's ETag

    value_property = models.FakeKey.value
    assert isinstance(value_property, property) and value_property.fset is not None
    set_value = value_property.fset

    def value_setter(self: Any, new_value: Any) -> None:
        if isinstance(new_value, _Assembled):
            self._value_buffer.close()
            self._value_buffer = new_value.spool
            self.contentsize = new_value.size
            return
        set_value(self, new_value)

    models.FakeMultipart.complete = complete
    models.FakeKey.value = property(value_property.fget, value_setter)


# GET answers for objects larger than this stream from the object's temp file instead of being read into memory.
STREAM_GET_BYTES = 8 * 1024 * 1024


class _StreamedBody:
    """An object's bytes as a response body: read a chunk at a time from its storage, never all of it at once.

    moto answers a GET with `key.value`, the whole object in memory (a 220 MB result took 220 MB, then more while
    it was sent). It also takes `len()` and slices for Range requests, which this answers by reading just that part.
    """

    def __init__(self, key: Any) -> None:
        self.key, self.size = key, int(key.size)

    def _read(self, start: int, length: int) -> bytes:
        with self.key.lock:
            self.key._value_buffer.seek(start)
            return bytes(self.key._value_buffer.read(length))

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return self.size > 0

    def __getitem__(self, part: slice) -> bytes:
        start, stop, _ = part.indices(self.size)
        return self._read(start, max(0, stop - start))

    def __iter__(self) -> Iterator[bytes]:
        for start in range(0, self.size, 1024 * 1024):
            yield self._read(start, 1024 * 1024)


class _StreamingKey:
    """A key whose `value` is a `_StreamedBody` (everything else is the key's)."""

    def __init__(self, key: Any) -> None:
        self._key = key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._key, name)

    @property
    def value(self) -> Any:
        return _StreamedBody(self._key)


def _patch_s3_streaming_get() -> None:
    """Answer a GET of a large object by streaming it from its temp file (see `_StreamedBody`)."""
    from moto.s3.responses import S3Response

    get_object, get_key = S3Response.get_object, S3Response._get_key

    def streaming_get_object(self: Any) -> Any:
        def large_keys_streamed(validate_storage_class: bool = True) -> tuple[Any, bool]:
            key, not_modified = get_key(self, validate_storage_class)
            return (_StreamingKey(key) if key.size > STREAM_GET_BYTES else key), not_modified

        self._get_key = large_keys_streamed  # for this request's call of get_object only
        try:
            return get_object(self)
        finally:
            del self._get_key

    S3Response.get_object = streaming_get_object  # type: ignore[method-assign]


def _listing_copy(version: Any) -> Any:
    """A version as a listing needs it: its own attributes (the listing sets `is_latest` on it), the original's storage
    read in place. The original keeps owning that storage: the copy never closes it when it is collected."""
    # Not copy.copy: it goes through FakeKey.__getstate__, which reads the whole value too.
    clone = object.__new__(type(version))
    clone.__dict__.update(version.__dict__)
    clone.dispose = lambda garbage=False: None
    return clone


def _patch_s3_version_listing() -> None:
    """List object versions without copying every object of the bucket.

    moto's `list_object_versions` deep-copies every version of every key in the bucket before it filters by prefix,
    and a key's copy (deep, or shallow: `copy.copy` goes through `__getstate__` too) reads its whole value and writes
    it into a new temp file: the finalizer's listing of one 1,000,000-row job's part files read the upload, the parts
    and the 150 MB result, held the emulation's lock for 8.7 s and took its memory from 425 MB to 875 MB. Here each
    version is copied without its value (`_listing_copy`). The deep copy is moto's only one in moto.s3.models, and
    its only other `copy` use is a shallow copy of bytes. Private moto API: moto is pinned, and
    tests/integration/test_emulation_atomic.py covers the patch.
    """
    from moto.s3 import models

    listed = (models.FakeKey, models.FakeDeleteMarker)

    class ShallowVersions:
        """Stands in for the `copy` module in moto.s3.models."""

        copy = staticmethod(copy.copy)

        @staticmethod
        def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
            if isinstance(value, list) and all(isinstance(v, listed) for v in value):
                return [_listing_copy(v) for v in value]
            return copy.deepcopy(value, memo)

    namespace = vars(models)  # the module's globals, where its code looks `copy` up
    assert namespace["copy"] is copy
    namespace["copy"] = ShallowVersions


def _patch_sqs_queue_depth() -> None:
    """Keep SQS requests from scanning the whole queue for every message.

    moto computes a queue's `attributes` (used when a message is sent, and three times for every message received, to
    read one setting) with the ApproximateNumberOf* counts, each a scan of every message in the queue: receiving cost
    grew with the queue's depth (a 1,000,000-row job puts 1,000 batches in the queue at once). The counts are left out
    of `attributes` and added back where they are asked for, GetQueueAttributes. SQS requests run one at a time under
    the emulation's lock (`AtomicDispatcher`), which the instance attribute below relies on.
    """
    from moto.core.utils import camelcase_to_underscores
    from moto.sqs.models import Queue, SQSBackend

    counts = [name for name in Queue.BASE_ATTRIBUTES if name.startswith("ApproximateNumberOf")]
    assert len(counts) == 3 and isinstance(Queue.attributes, property) and Queue.attributes.fget is not None
    full = Queue.attributes.fget
    cheap = [name for name in Queue.BASE_ATTRIBUTES if name not in counts]

    def attributes(self: Any) -> dict[str, Any]:
        self.BASE_ATTRIBUTES = cheap  # shadows the class's list for this call
        try:
            return dict(full(self))
        finally:
            del self.BASE_ATTRIBUTES

    original = SQSBackend.get_queue_attributes

    def get_queue_attributes(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
        found = dict(original(self, queue_name, attribute_names))
        queue = self.get_queue(queue_name)
        for name in counts:
            if "All" in attribute_names or name in attribute_names:
                found[name] = getattr(queue, camelcase_to_underscores(name))
        return found

    Queue.attributes = property(attributes)
    SQSBackend.get_queue_attributes = get_queue_attributes


def _patch_backend_lookup() -> None:
    """moto lists its own package directory (about 200 stat calls) for every request, under a global lock, to find the
    service of a host name: list it once."""
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def _patch_lambda(invoke_url: str, token: str) -> None:
    from moto.awslambda.models import LambdaFunction

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        data = json.dumps({"function": self.function_name, "event": event}).encode()
        request = urllib.request.Request(  # noqa: S310 - loopback
            invoke_url, data=data, method="POST", headers={INVOKE_TOKEN_HEADER: token}
        )
        try:
            with urllib.request.urlopen(request, timeout=900) as response:  # noqa: S310
                answer = json.loads(response.read())
        except OSError as exc:
            return json.dumps({"errorMessage": str(exc), "errorType": "ServiceException"}), True, ""
        return str(answer["payload"]), bool(answer["errored"]), ""

    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]


def _patch_states_credentials(guard: Guard) -> None:
    """moto's Step Functions executor calls Lambda over HTTP with the fixed keys "ak"/"sk": sign those calls with the
    state machine role's keys instead, so they are checked against that role like every other call."""
    import boto3
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    states: list[Principal] = []
    # One client per service and key, made once: moto makes one per task, and a client of a new session loads its
    # service's model again (about 0.1 s a task, twice with the signing session: 0.4 s of a 10,000-row job's
    # finalizer). boto3 clients are thread-safe.
    clients: dict[tuple[str, str, str], Any] = {}
    lock = threading.Lock()

    def remember(principals: list[Principal]) -> None:
        states.extend(p for p in principals if p.name == "states")

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        if not states:
            return original(region, service, state_credentials)
        key = (region, service, states[-1].access_key_id)
        with lock:
            client = clients.get(key)
            if client is None:
                template = original(region, service, state_credentials)
                session = boto3.session.Session(
                    aws_access_key_id=states[-1].access_key_id, aws_secret_access_key=states[-1].secret
                )
                client = session.client(
                    service, region_name=region, endpoint_url=template.meta.endpoint_url, config=template.meta.config
                )
                clients[key] = client
        return client

    guard.on_principals = remember
    boto_client.boto_client_for = boto_client_for
    lambda_eval_utils.boto_client_for = boto_client_for  # type: ignore[attr-defined]


# Objects larger than this live in temp files rather than in the emulation's memory (moto's default is 5 MiB, which
# kept every part file of a job, 220 MB for 1,000,000 email rows, in memory until the job ended).
KEY_BUFFER_BYTES = 64 * 1024


def _files_for_objects() -> None:
    """Keep objects over KEY_BUFFER_BYTES on disk, and allow the open files that takes (one per such object)."""
    import resource

    os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(KEY_BUFFER_BYTES))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 20, hard))


def serve(port: int, invoke_url: str, fd: int | None = None) -> None:
    """Run moto's server on 127.0.0.1:port, or on the listening socket `fd` (bound to that port) handed over by the
    parent (blocks); called in the emulation process."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.server import MotoRequestHandler  # type: ignore[attr-defined]
    from werkzeug.serving import make_server

    # moto's Step Functions executor calls Lambda back on localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)
    # The bucket's own CORS rules answer browsers (local/guard.py); moto's answers every origin.
    os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"
    _files_for_objects()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _patch_lambda(invoke_url, os.environ.pop(INVOKE_TOKEN_VAR))
    _patch_s3_multipart()
    _patch_s3_streaming_get()
    _patch_s3_version_listing()
    _patch_sqs_queue_depth()
    _patch_backend_lookup()
    from moto.core.config import default_user_config

    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    dispatcher = AtomicDispatcher(DomainDispatcherApplication(create_backend_app))
    _patch_sqs_wait(dispatcher)
    runtime = Principal("runtime", "", os.environ.pop(KEY_ID_VAR), os.environ.pop(SECRET_VAR), unrestricted=True)
    guard = Guard(CountingApp(dispatcher), runtime)
    _patch_states_credentials(guard)
    # Ctrl-C reaches the whole process group; the runtime ends this process (SIGTERM) once it has read what the
    # functions used (bulkapi iam-report), and it goes with the runtime if that dies.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()
    # moto's Step Functions interpreter takes ~0.9 s of a core to import, at the first Step Functions call: the
    # runtime creates the state machine last of its resources, so importing it now overlaps the creation of the others.
    threading.Thread(target=importlib.import_module, args=("moto.stepfunctions.parser.models",), daemon=True).start()
    app = LargeBodies(guard)
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler, fd=fd)
    server.serve_forever()


# The runtime's own keys, handed to the emulation process in its environment (readable by this user only).
KEY_ID_VAR = "BULKAPI_EMULATION_KEY_ID"
SECRET_VAR = "BULKAPI_EMULATION_SECRET"  # noqa: S105 - the name of a variable
# The token the emulation shows the runtime's invoke endpoint (local/runtime.py InvokeEndpoint), handed over alike.
INVOKE_TOKEN_VAR = "BULKAPI_INVOKE_TOKEN"  # noqa: S105 - the name of a variable
INVOKE_TOKEN_HEADER = "X-Bulkapi-Invoke-Token"  # noqa: S105 - the name of a header


def new_keys(name: str) -> tuple[str, str]:
    """A random access key id (AKIA-like, naming its holder for readers of the logs) and secret."""
    return f"LOCAL{name.upper()[:8]}{secrets.token_hex(6).upper()}", secrets.token_urlsafe(30)


# The listen backlog werkzeug gives a server it binds itself.
LISTEN_QUEUE = 128


class EmulationProcess:
    """Starts, watches and stops the emulation process."""

    def __init__(self, invoke_url: str, invoke_token: str) -> None:
        self.invoke_url, self.invoke_token = invoke_url, invoke_token
        # Bound and listening here, then handed to the process: a port chosen first and bound by the process a
        # moment later could be taken in between (another server, or any connection's ephemeral port).
        self.socket: socket.socket | None = socket.create_server(("127.0.0.1", 0), backlog=LISTEN_QUEUE)
        self.port = int(self.socket.getsockname()[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        # The runtime's keys: every request must be signed with them or with keys registered through them.
        self.access_key_id, self.secret = new_keys("runtime")

    def start(self, timeout: float = 60) -> None:
        """Start it and wait until it answers."""
        assert self.socket is not None, "started twice"
        fd = self.socket.fileno()
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our interpreter, our module
                [
                    sys.executable,
                    "-m",
                    "local.emulation",
                    "--port",
                    str(self.port),
                    "--fd",
                    str(fd),
                    "--invoke-url",
                    self.invoke_url,
                ],
                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                stdin=subprocess.DEVNULL,
                pass_fds=(fd,),
                env={
                    # glibc's malloc: blocks of 1 MiB and more (request bodies, S3 parts) straight from mmap, so
                    # freeing one gives it back. By default the threshold rises to the largest block freed, after
                    # which 8 MiB parts came from the heaps of werkzeug's request threads and stayed there (60 MB
                    # more after writing one 150 MB result).
                    "MALLOC_MMAP_THRESHOLD_": str(1024 * 1024),
                    **os.environ,
                    KEY_ID_VAR: self.access_key_id,
                    SECRET_VAR: self.secret,
                    INVOKE_TOKEN_VAR: self.invoke_token,
                },
            )
        finally:
            # The process has its own copy; connections made before it accepts wait in the backlog.
            self.socket.close()
            self.socket = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the AWS emulation exited with {self.process.returncode}")
            try:
                self.counts()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the AWS emulation did not start")

    def _control(self, path: str, method: str = "GET", data: bytes | None = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 - loopback
            self.endpoint + path, data=data, method=method, headers={TOKEN_HEADER[5:].replace("_", "-"): self.secret}
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return json.loads(response.read())

    def counts(self, reset: bool = False) -> dict[str, int]:
        """Requests served so far by `service.Operation` (optionally resetting the counters)."""
        return dict(self._control(COUNTS_PATH, "DELETE" if reset else "GET"))

    def counts_by_principal(self) -> dict[str, dict[str, int]]:
        """Requests served so far by principal (`runtime`, a function's role name, `states`...), then operation."""
        return dict(self._control(COUNTS_PATH + "?by=principal"))

    def register(self, principals: Sequence[Principal], cors: dict[str, list[dict[str, Any]]]) -> None:
        """Tell the emulation the principals (access keys and their roles' policies) and the buckets' CORS rules."""
        body = json.dumps({"principals": [p.to_json() for p in principals], "cors": cors}).encode()
        self._control(PRINCIPALS_PATH, "POST", body)

    def usage(self) -> dict[str, Any]:
        """What each principal used (and was refused), with the roles' statements: local/iam.py `Enforcer.usage`."""
        return dict(self._control(USAGE_PATH))

    def stop(self) -> None:
        """Terminate the process (its state is in memory only)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description="bulkapi's AWS emulation process (started by the local runtime)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fd", type=int, default=None, help="a listening socket on that port to serve on")
    parser.add_argument("--invoke-url", required=True)
    args = parser.parse_args()
    serve(args.port, args.invoke_url, args.fd)


if __name__ == "__main__":
    main()
