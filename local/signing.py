"""What S3 and the other services check before a request reaches them: its SigV4 signature, its age, and for a
presigned POST the policy of the form. The emulation (local/emulation.py) answers nothing else.

- A request signed in its `Authorization` header: the canonical request is rebuilt from what arrived (method, raw
  path, query, the signed headers, the payload hash) and signed with the secret of the access key it names; a
  different signature is `SignatureDoesNotMatch` (S3) / `InvalidSignatureException`, an unknown key
  `InvalidAccessKeyId` / `UnrecognizedClientException`, a date more than 15 minutes off `RequestTimeTooSkewed`.
- A presigned URL (the signature in the query): the same, with `UNSIGNED-PAYLOAD`, and refused after `X-Amz-Expires`.
- A presigned POST form: the signature of its `policy`, the policy's `expiration`, and every condition (exact values,
  `starts-with`, `content-length-range`); a field the policy does not name is refused, as S3 refuses it.

The signer's principal then authorizes the request (local/iam.py): a form or URL acts with the signer's permissions.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote_plus

MAX_SKEW = timedelta(minutes=15)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# Payload hashes that are not a hash of the body (the body is not signed, or is signed chunk by chunk).
UNSIGNED_PAYLOADS = frozenset(
    {"UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"}
)


class Refused(Exception):
    """A request the service refuses before looking at it: its HTTP status and the service's error code."""

    def __init__(self, status: int, code: str, message: str, **details: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


@dataclass(frozen=True)
class Signed:
    """Who signed a request, and for which service."""

    access_key_id: str
    service: str
    region: str


@functools.lru_cache(maxsize=256)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """SigV4's derived key for a day, region and service."""
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _sign(secret: str, scope: list[str], amz_date: str, canonical: str) -> str:
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, "/".join(scope), hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = signing_key(secret, scope[0], scope[1], scope[2])
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def _canonical_query(query: str, drop: str | None = None) -> str:
    pairs = []
    for part in query.split("&") if query else []:
        name, _, value = part.partition("=")
        name, value = unquote_plus(name), unquote_plus(value)
        if name == drop:
            continue
        pairs.append((quote(name, safe="-_.~"), quote(value, safe="-_.~")))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def _parse_date(amz_date: str) -> datetime:
    try:
        return datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise Refused(403, "AccessDenied", f"X-Amz-Date {amz_date!r} is not a date") from exc


def _refuse_signature(service: str) -> Refused:
    if service == "s3":
        return Refused(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
        )
    return Refused(
        400,
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided.",
    )


def unknown_key(service: str) -> Refused:
    """The error for an access key id the emulation does not know."""
    if service == "s3":
        return Refused(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    return Refused(400, "UnrecognizedClientException", "The security token included in the request is invalid.")


def unsigned(service: str) -> Refused:
    """The error for a request that carries no signature at all."""
    if service == "s3":
        return Refused(403, "AccessDenied", "Access Denied (the request is not signed)")
    return Refused(400, "MissingAuthenticationTokenException", "Request is missing Authentication Token")


def header_credential(authorization: str) -> tuple[Signed, dict[str, str]]:
    """The signer and the parts of an `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
    Signature=...` header."""
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        raise Refused(400, "IncompleteSignatureException", "Only AWS4-HMAC-SHA256 signatures are accepted")
    parts = dict(
        item.strip().split("=", 1) for item in authorization[len("AWS4-HMAC-SHA256 ") :].split(",") if "=" in item
    )
    scope = parts.get("Credential", "").split("/")
    if len(scope) != 5 or not parts.get("Signature") or not parts.get("SignedHeaders"):
        raise Refused(400, "IncompleteSignatureException", "The Authorization header is incomplete")
    return Signed(scope[0], scope[3], scope[2]), parts


def verify_header(
    secret: str,
    parts: Mapping[str, str],
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    service: str,
    now: datetime,
) -> None:
    """Check a header-signed request (raises Refused)."""
    amz_date = headers.get("x-amz-date", "")
    if abs(now - _parse_date(amz_date)) > MAX_SKEW:
        code = "RequestTimeTooSkewed" if service == "s3" else "InvalidSignatureException"
        raise Refused(
            403 if service == "s3" else 400,
            code,
            "The difference between the request time and the current time is too large (Signature expired)",
        )
    signed = parts["SignedHeaders"].split(";")
    payload = headers.get("x-amz-content-sha256")
    if payload is None:
        payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    elif payload not in UNSIGNED_PAYLOADS and payload != hashlib.sha256(body).hexdigest():
        raise Refused(
            400,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    # S3 signs the path as sent; every other service signs it encoded once more.
    path = (raw_path or "/") if service == "s3" else quote(raw_path or "/", safe="/~")
    canonical = "\n".join(
        [
            method,
            path,
            _canonical_query(query),
            "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed),
            parts["SignedHeaders"],
            payload,
        ]
    )
    scope = parts["Credential"].split("/")[1:]
    if not hmac.compare_digest(_sign(secret, scope, amz_date, canonical), parts["Signature"]):
        raise _refuse_signature(service)


def query_credential(params: Mapping[str, list[str]]) -> Signed:
    """The signer of a presigned URL (`X-Amz-Credential` in the query)."""
    scope = params["X-Amz-Credential"][0].split("/")
    if len(scope) != 5:
        raise Refused(400, "AuthorizationQueryParametersError", "X-Amz-Credential is malformed")
    return Signed(scope[0], scope[3], scope[2])


def verify_query(
    secret: str,
    params: Mapping[str, list[str]],
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    now: datetime,
) -> None:
    """Check a presigned URL: its signature, then its expiry (raises Refused)."""
    try:
        amz_date = params["X-Amz-Date"][0]
        expires = int(params["X-Amz-Expires"][0])
        signed_headers = params["X-Amz-SignedHeaders"][0]
        signature = params["X-Amz-Signature"][0]
    except (KeyError, ValueError) as exc:
        raise Refused(400, "AuthorizationQueryParametersError", "the presigned URL lacks a query parameter") from exc
    canonical = "\n".join(
        [
            method,
            raw_path or "/",
            _canonical_query(query, drop="X-Amz-Signature"),
            "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed_headers.split(";")),
            signed_headers,
            "UNSIGNED-PAYLOAD",
        ]
    )
    scope = params["X-Amz-Credential"][0].split("/")[1:]
    if not hmac.compare_digest(_sign(secret, scope, amz_date, canonical), signature):
        raise _refuse_signature("s3")
    if now > _parse_date(amz_date) + timedelta(seconds=expires):
        raise Refused(403, "AccessDenied", "Request has expired", Expires=str(expires))


# -- presigned POST ------------------------------------------------------------------------------------------------
# Form fields S3 does not check against the policy.
_UNCHECKED = frozenset({"x-amz-signature", "file", "policy"})


def form_credential(fields: Mapping[str, str]) -> Signed:
    """The signer of a presigned POST form."""
    if fields.get("x-amz-algorithm") != "AWS4-HMAC-SHA256" or "x-amz-credential" not in fields:
        raise Refused(400, "InvalidRequest", "The form is not signed with AWS4-HMAC-SHA256")
    scope = fields["x-amz-credential"].split("/")
    if len(scope) != 5:
        raise Refused(400, "InvalidArgument", "x-amz-credential is malformed")
    return Signed(scope[0], scope[3], scope[2])


def _policy_failed(condition: Any) -> Refused:
    return Refused(
        403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}"
    )


def verify_form(secret: str, bucket: str, fields: Mapping[str, str], size: int, now: datetime) -> None:
    """Check a presigned POST: the policy's signature, its expiration and conditions, the file's size (raises)."""
    policy_b64, signature = fields.get("policy"), fields.get("x-amz-signature")
    if not policy_b64 or not signature:
        raise Refused(403, "AccessDenied", "Invalid according to Policy: the form has no policy or no signature")
    scope = fields["x-amz-credential"].split("/")[1:]
    expected = hmac.new(signing_key(secret, scope[0], scope[1], scope[2]), policy_b64.encode(), hashlib.sha256)
    if not hmac.compare_digest(expected.hexdigest(), signature):
        raise _refuse_signature("s3")
    try:
        policy = json.loads(base64.b64decode(policy_b64))
        expiration = datetime.fromisoformat(str(policy["expiration"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError) as exc:
        raise Refused(
            400, "InvalidPolicyDocument", "Invalid Policy: the policy is not a valid policy document"
        ) from exc
    if now >= expiration:
        raise Refused(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    values = {k.lower(): v for k, v in fields.items()}
    values["bucket"] = bucket
    covered = {"bucket"} | _check_conditions(policy.get("conditions", []), values, size)
    extra = sorted(
        name for name in values if name not in covered and name not in _UNCHECKED and not name.startswith("x-ignore-")
    )
    if extra:
        raise Refused(403, "AccessDenied", f"Invalid according to Policy: Extra input fields: {', '.join(extra)}")


def _check_conditions(conditions: list[Any], values: Mapping[str, str], size: int) -> set[str]:
    """Check a POST policy's conditions against the form (raises Refused); returns the fields they name."""
    covered: set[str] = set()
    for condition in conditions:
        if isinstance(condition, dict):
            ((name, value),) = condition.items()
            condition = ["eq", f"${name}", value]
        op = str(condition[0]).lower()
        if op == "content-length-range":
            _check_size(int(condition[1]), int(condition[2]), size)
            continue
        name = str(condition[1]).lstrip("$").lower()
        covered.add(name)
        actual = values.get(name)
        if op == "eq" and actual != str(condition[2]):
            raise _policy_failed(condition)
        if op == "starts-with" and (actual is None or not actual.startswith(str(condition[2]))):
            raise _policy_failed(condition)
    return covered


def _check_size(low: int, high: int, size: int) -> None:
    if size > high:
        raise Refused(
            400,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size",
            ProposedSize=str(size),
            MaxSizeAllowed=str(high),
        )
    if size < low:
        raise Refused(
            400,
            "EntityTooSmall",
            "Your proposed upload is smaller than the minimum allowed size",
            ProposedSize=str(size),
            MinSizeAllowed=str(low),
        )


# -- answers -------------------------------------------------------------------------------------------------------
def error_response(service: str, refused: Refused, resource: str = "") -> tuple[str, list[tuple[str, str]], bytes]:
    """The status line, headers and body a service answers an error with (S3 XML, Lambda REST, or JSON)."""
    reason = {400: "Bad Request", 403: "Forbidden"}.get(refused.status, "Error")
    status = f"{refused.status} {reason}"
    if service == "s3" or service == "":
        from xml.sax.saxutils import escape

        details = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in refused.details.items())
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{refused.code}</Code><Message>{escape(refused.message)}</Message>{details}"
            f"<Resource>{escape(resource)}</Resource><RequestId>local</RequestId></Error>"
        ).encode()
        return status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))], body
    if service == "lambda":
        body = json.dumps({"Type": "User", "Message": refused.message}).encode()
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", refused.code)]
        return status, [*headers, ("Content-Length", str(len(body)))], body
    code = refused.code
    headers = [("Content-Type", "application/x-amz-json-1.0")]
    if service == "sqs":
        # SQS's JSON protocol names the query-protocol error code in this header; botocore reads it from there.
        query_code = "AccessDenied" if code == "AccessDeniedException" else code
        headers.append(("x-amzn-query-error", f"{query_code};Sender"))
    body = json.dumps({"__type": f"com.amazonaws.{service}#{code}", "message": refused.message}).encode()
    return status, [*headers, ("Content-Length", str(len(body)))], body


def iso_now() -> datetime:
    """Now, in UTC (one place, so the checks read one clock)."""
    return datetime.now(UTC)
