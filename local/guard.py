"""The emulation's front door: only requests signed by a principal the runtime made get in, and each only as far as
that principal's role allows (local/signing.py, local/iam.py). No browser origin gets a CORS answer, except what the
bucket's own CORS rules allow (the web console's presigned upload), as S3 answers it.

The runtime's control paths (`/_bulkapi/...`, `/moto-api/...`) need the runtime's secret in `X-Bulkapi-Token`.
"""

from __future__ import annotations

import hmac
import io
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, unquote

from local import iam, signing

PRINCIPALS_PATH = "/_bulkapi/principals"
USAGE_PATH = "/_bulkapi/iam"
# Where the guard leaves who signed a request for the apps behind it (the request counts by principal).
PRINCIPAL_KEY = "bulkapi.principal"
TOKEN_HEADER = "HTTP_X_BULKAPI_TOKEN"  # noqa: S105 - a header name
StartResponse = Callable[..., Any]


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    found = {key[5:].replace("_", "-").lower(): str(value) for key, value in environ.items() if key.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        found["content-type"] = str(environ["CONTENT_TYPE"])
    if environ.get("CONTENT_LENGTH"):
        found["content-length"] = str(environ["CONTENT_LENGTH"])
    return found


def _body(environ: dict[str, Any]) -> bytes:
    """The request body, read once and put back for the service behind (moto reads it again)."""
    stream = environ.get("wsgi.input")
    if isinstance(stream, io.BytesIO):
        return stream.getvalue()
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data = stream.read(length) if (stream is not None and length) else b""
    environ["wsgi.input"] = io.BytesIO(data)
    return bytes(data)


def _raw_target(environ: dict[str, Any]) -> tuple[str, str]:
    raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/"))
    path, _, query = raw.partition("?")
    return path, query or str(environ.get("QUERY_STRING", ""))


def _form(environ: dict[str, Any], body: bytes) -> tuple[dict[str, str], int, str]:
    """A POST form's fields before the file (S3 ignores any after it), the file's size and file name."""
    from werkzeug.formparser import parse_form_data

    copy = {**environ, "wsgi.input": io.BytesIO(body)}
    _, form, files = parse_form_data(copy)
    upload = files.get("file")
    if upload is None:
        raise signing.Refused(400, "InvalidArgument", "POST requires exactly one file upload per request.")
    upload.stream.seek(0, io.SEEK_END)
    size = upload.stream.tell()
    return {k.lower(): v for k, v in form.items()}, size, upload.filename or ""


class Guard:
    """WSGI middleware in front of moto: signatures, IAM, CORS."""

    def __init__(self, app: Callable[..., Iterable[bytes]], runtime: iam.Principal) -> None:
        self.app = app
        self.enforcer = iam.Enforcer()
        self.enforcer.add([runtime])
        self.token = runtime.secret
        # Bucket name -> its CORS rules ({"AllowedOrigins", "AllowedMethods", "AllowedHeaders", "MaxAgeSeconds"}).
        self.cors: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.on_principals: Callable[[list[iam.Principal]], None] = lambda _: None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path.startswith(("/_bulkapi", "/moto-api")):
            if not hmac.compare_digest(str(environ.get(TOKEN_HEADER, "")), self.token):
                return self._answer(start_response, "403 Forbidden", b'{"error": "the runtime token is required"}')
            if path == PRINCIPALS_PATH:
                return self._principals(environ, start_response)
            if path == USAGE_PATH:
                return self._answer(start_response, "200 OK", json.dumps(self.enforcer.usage()).encode())
            return self.app(environ, start_response)
        headers = _headers(environ)
        method = str(environ.get("REQUEST_METHOD", "GET"))
        origin = headers.get("origin")
        if method == "OPTIONS":
            return self._preflight(path, headers, start_response)
        service = self._service_guess(environ, headers)
        try:
            principal, service, checks = self._check(environ, method, headers)
            self.enforcer.authorize(principal, checks)
            environ[PRINCIPAL_KEY] = principal.name
        except signing.Refused as refused:
            status, out, body = signing.error_response(service, refused)
            start_response(status, out)
            return [body]
        except iam.Denied as denied:
            as_refused = signing.Refused(
                403 if service in ("s3", "lambda") else 400,
                "AccessDenied" if service == "s3" else "AccessDeniedException",
                str(denied),
            )
            status, out, body = signing.error_response(service, as_refused, denied.resource)
            start_response(status, out)
            return [body]
        allow = self._cors_allowed(path, origin, method) if origin else None

        def respond(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            # moto's own CORS answer (any origin) is dropped; S3's, by the bucket's rules, takes its place.
            kept = [(k, v) for k, v in response_headers if not k.lower().startswith("access-control-")]
            if allow is not None:
                kept += allow
            return start_response(status, kept, exc_info) if exc_info is not None else start_response(status, kept)

        return self.app(environ, respond)

    # -- checks ----------------------------------------------------------------------------------------------------
    def _principal(self, access_key_id: str, service: str) -> iam.Principal:
        principal = self.enforcer.principals.get(access_key_id)
        if principal is None:
            raise signing.unknown_key(service)
        return principal

    def _check(
        self, environ: dict[str, Any], method: str, headers: dict[str, str]
    ) -> tuple[iam.Principal, str, list[iam.Check]]:
        """Verify the request's signature: its signer, service, and what IAM must allow (raises Refused)."""
        raw_path, query = _raw_target(environ)
        now = signing.iso_now()
        authorization = headers.get("authorization")
        if authorization:
            signed, parts = signing.header_credential(authorization)
            principal = self._principal(signed.access_key_id, signed.service)
            body = _body(environ)
            signing.verify_header(principal.secret, parts, method, raw_path, query, headers, body, signed.service, now)
            return principal, signed.service, self._checks(signed.service, method, raw_path, query, headers, body)
        params = parse_qs(query, keep_blank_values=True)
        if "AWSAccessKeyId" in params or headers.get("authorization", "").startswith("AWS "):
            raise signing.Refused(
                400,
                "InvalidRequest",
                "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
            )
        if "X-Amz-Credential" in params:
            signed = signing.query_credential(params)
            principal = self._principal(signed.access_key_id, "s3")
            signing.verify_query(principal.secret, params, method, raw_path, query, headers, now)
            body = _body(environ) if method in ("PUT", "POST") else b""
            return principal, "s3", iam.s3_checks(method, raw_path, query, headers, body)
        if method == "POST" and headers.get("content-type", "").startswith("multipart/form-data"):
            body = _body(environ)
            fields, size, filename = _form(environ, body)
            signed = signing.form_credential(fields)
            principal = self._principal(signed.access_key_id, "s3")
            bucket = unquote(raw_path).strip("/").split("/", 1)[0]
            signing.verify_form(principal.secret, bucket, fields, size, now)
            key = fields.get("key", "").replace("${filename}", filename)
            return principal, "s3", [iam.Check("s3:PutObject", f"arn:aws:s3:::{bucket}/{key}")]
        raise signing.unsigned(self._service_guess(environ, headers))

    @staticmethod
    def _checks(
        service: str, method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes
    ) -> list[iam.Check]:
        if service == "s3":
            return iam.s3_checks(method, raw_path, query, headers, body)
        if service == "lambda":
            return iam.lambda_checks(method, raw_path)
        target = headers.get("x-amz-target")
        if target:
            try:
                payload = json.loads(body or b"{}")
            except ValueError as exc:
                raise signing.Refused(400, "SerializationException", "the body is not JSON") from exc
            return iam.json_checks(service, target.rsplit(".", 1)[-1], payload)
        form = parse_qs(body.decode("utf-8", "replace")) if body else parse_qs(query)
        action = form.get("Action", [method])[0]
        return [iam.Check(f"{service}:{action}", "*")]

    @staticmethod
    def _service_guess(environ: dict[str, Any], headers: dict[str, str]) -> str:
        scope = headers.get("authorization", "").split("Credential=", 1)[-1].split(",", 1)[0].split("/")
        if len(scope) == 5:
            return scope[3]
        target = headers.get("x-amz-target", "")
        if target.startswith("DynamoDB"):
            return "dynamodb"
        if target.startswith("AmazonSQS"):
            return "sqs"
        return "s3" if not target else "unknown"

    # -- CORS ------------------------------------------------------------------------------------------------------
    def _rules(self, path: str) -> list[dict[str, Any]]:
        bucket = unquote(path).strip("/").split("/", 1)[0]
        with self._lock:
            return list(self.cors.get(bucket, []))

    def _cors_allowed(self, path: str, origin: str | None, method: str) -> list[tuple[str, str]] | None:
        for rule in self._rules(path):
            if origin and method in rule.get("AllowedMethods", []) and iam._any(rule.get("AllowedOrigins", []), origin):
                return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        return None

    def _preflight(self, path: str, headers: dict[str, str], start_response: StartResponse) -> Iterable[bytes]:
        origin = headers.get("origin")
        wanted = headers.get("access-control-request-method", "")
        for rule in self._rules(path):
            if origin and wanted in rule.get("AllowedMethods", []) and iam._any(rule.get("AllowedOrigins", []), origin):
                out = [
                    ("Access-Control-Allow-Origin", origin),
                    ("Access-Control-Allow-Methods", ", ".join(rule["AllowedMethods"])),
                    ("Vary", "Origin"),
                ]
                if headers.get("access-control-request-headers") and "*" in rule.get("AllowedHeaders", []):
                    out.append(("Access-Control-Allow-Headers", headers["access-control-request-headers"]))
                if rule.get("MaxAge"):
                    out.append(("Access-Control-Max-Age", str(rule["MaxAge"])))
                start_response("200 OK", [*out, ("Content-Length", "0")])
                return [b""]
        refused = signing.Refused(403, "AccessForbidden", "CORSResponse: This CORS request is not allowed.")
        status, out, body = signing.error_response("s3", refused)
        start_response(status, out)
        return [body]

    # -- control ---------------------------------------------------------------------------------------------------
    def _principals(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        data = json.loads(_body(environ) or b"{}")
        principals = [iam.Principal.from_json(p) for p in data.get("principals", [])]
        self.enforcer.add(principals)
        with self._lock:
            self.cors.update(data.get("cors", {}))
        self.on_principals(principals)
        return self._answer(start_response, "200 OK", b"{}")

    @staticmethod
    def _answer(start_response: StartResponse, status: str, body: bytes) -> Iterable[bytes]:
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
