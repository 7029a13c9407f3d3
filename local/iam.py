"""IAM, locally: each function's calls are checked against its execution role, as AWS checks them.

The roles and their policies come from the synthesized template (`AWS::IAM::Policy`, `AWS::IAM::ManagedPolicy`, a
role's inline `Policies` and `ManagedPolicyArns`), with intrinsics resolved to the local resources' names. Every
request to the emulation is signed (local/signing.py); its access key id names the principal: a function (its role),
the state machine (its role), or the runtime itself (the operator: anything). `authorize` turns the request into the
IAM actions and resource ARNs AWS would check (a transaction per contained operation, `SendMessageBatch` as
`sqs:SendMessage`, a copy as `GetObject` on the source and `PutObject` on the target) and evaluates identity policies
the way AWS does: an explicit `Deny` wins, then any `Allow` whose action, resource and conditions match; else denied.

Resource policies (bucket and queue policies) are not evaluated: the stack's only deny in them is `aws:SecureTransport`
false, and the emulation speaks plain HTTP on loopback. What each principal used is recorded for `bulkapi iam-report`.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.etree import ElementTree

ACCOUNT = "123456789012"
REGION = "us-east-1"

# The condition keys the emulation supplies with a request; a policy of a function that tests another is refused
# when the template is loaded (it could never be allowed locally, and would be silently wrong if ignored).
CONDITION_KEYS = frozenset({"s3:prefix", "s3:delimiter", "aws:securetransport", "s3:versionid"})
OPERATORS = frozenset(
    {
        "StringEquals",
        "StringNotEquals",
        "StringEqualsIgnoreCase",
        "StringNotEqualsIgnoreCase",
        "StringLike",
        "StringNotLike",
        "ArnEquals",
        "ArnLike",
        "ArnNotEquals",
        "ArnNotLike",
        "Bool",
        "Null",
    }
)
# AWS managed policies a role of the stack may carry, by name (their documents are AWS's, not in the template).
AWS_MANAGED: dict[str, list[dict[str, Any]]] = {
    "service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
}
# Actions the Lambda service itself uses with a function's role (its logs and traces): granted for the platform, never
# called by the function's code, so never seen by the emulation. `bulkapi iam-report` lists them apart.
PLATFORM_ACTIONS = (
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:*",
    # Step Functions' own delivery of a state machine's logs (CDK grants these to the state machine's role).
    "logs:*LogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)
# What CDK's SqsEventSource grants the role so that Lambda's event source mapping can read the function's queue: the
# service polls with the role (locally the poller does, with the function's keys), the code never calls these.
EVENT_SOURCE_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
)


class TemplateError(Exception):
    """The template cannot be run locally: names the resource and the reason."""


class Denied(Exception):
    """A request its principal may not make: the action and resource AWS names in its error."""

    def __init__(self, principal: Principal, action: str, resource: str, explicit: bool) -> None:
        why = (
            "with an explicit deny in an identity-based policy"
            if explicit
            else "because no identity-based policy allows"
        )
        tail = "" if explicit else f" the {action} action"
        super().__init__(
            f"User: {principal.arn} is not authorized to perform: {action} on resource: {resource} {why}{tail}"
        )
        self.action, self.resource = action, resource


@dataclass
class Principal:
    """Who signs with an access key: a role used by a function (or the state machine), or the runtime (all)."""

    name: str  # the function's name, "states", or "runtime"
    role: str  # the role's logical id ("" for the runtime)
    access_key_id: str
    secret: str
    statements: list[dict[str, Any]] = field(default_factory=list)
    unrestricted: bool = False

    @property
    def arn(self) -> str:
        """How AWS names the caller in an error (an assumed role's session, for a function)."""
        if self.unrestricted:
            return f"arn:aws:iam::{ACCOUNT}:user/{self.name}"
        return f"arn:aws:sts::{ACCOUNT}:assumed-role/{self.role}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        """What the emulation process is told about it."""
        return {
            "name": self.name,
            "role": self.role,
            "access_key_id": self.access_key_id,
            "secret": self.secret,
            "statements": self.statements,
            "unrestricted": self.unrestricted,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Principal:
        """The inverse of `to_json`."""
        return cls(**dict(data))


# -- policies from the template -------------------------------------------------------------------------------------
def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_id(value: Any) -> str | None:
    """The logical id a `Ref` / `Fn::GetAtt ... Arn` of a role points to."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            arg = value["Fn::GetAtt"]
            return str(arg[0] if isinstance(arg, list) else arg.split(".", 1)[0])
    return None


def role_of(value: Any) -> str | None:
    """The logical id of the role a property names (`Fn::GetAtt [Role, Arn]` or `Ref`), if it names one."""
    return _role_id(value)


def role_statements(template: Mapping[str, Any], resolve: Any) -> dict[str, list[dict[str, Any]]]:
    """Every role's identity-policy statements, resolved, by the role's logical id."""
    resources: Mapping[str, Any] = template["Resources"]
    found: dict[str, list[dict[str, Any]]] = {
        lid: [] for lid, res in resources.items() if res["Type"] == "AWS::IAM::Role"
    }
    managed: dict[str, list[dict[str, Any]]] = {}
    for lid, res in resources.items():
        if res["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        props = res.get("Properties", {})
        statements = _statements(lid, resolve(props.get("PolicyDocument", {})))
        managed[lid] = statements
        for role in props.get("Roles", []):
            role_lid = _role_id(role)
            if role_lid in found:
                found[role_lid].extend(statements)
    for lid, res in resources.items():
        if res["Type"] != "AWS::IAM::Role":
            continue
        props = res.get("Properties", {})
        for policy in props.get("Policies", []):
            found[lid].extend(_statements(lid, resolve(policy.get("PolicyDocument", {}))))
        for arn in props.get("ManagedPolicyArns", []):
            ref = _role_id(arn)
            if ref in managed:
                found[lid].extend(managed[ref])
                continue
            name = str(resolve(arn)).split(":policy/", 1)[-1]
            if name not in AWS_MANAGED:
                raise TemplateError(f"{lid}: the AWS managed policy {name} is not known to the local runtime")
            found[lid].extend(AWS_MANAGED[name])
    return found


def _statements(lid: str, document: Mapping[str, Any]) -> list[dict[str, Any]]:
    statements = [dict(s) for s in _as_list(document.get("Statement", []))]
    for statement in statements:
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise TemplateError(f"{lid}: a statement's Effect is {statement.get('Effect')!r}")
        if "Principal" in statement or "NotPrincipal" in statement:
            raise TemplateError(f"{lid}: an identity policy names a Principal")
        for operator, conditions in (statement.get("Condition") or {}).items():
            base = operator.split(":", 1)[-1].removesuffix("IfExists")
            if base not in OPERATORS:
                raise TemplateError(f"{lid}: the condition operator {operator} is not emulated")
            for key in conditions:
                if key.lower() not in CONDITION_KEYS:
                    raise TemplateError(f"{lid}: the condition key {key} is not supplied by the local emulation")
    return statements


def function_roles(template: Mapping[str, Any]) -> dict[str, str]:
    """Each function's role (logical ids); a function whose role is not a role of the template is refused."""
    roles: dict[str, str] = {}
    for lid, res in template["Resources"].items():
        if res["Type"] != "AWS::Lambda::Function":
            continue
        role = _role_id(res.get("Properties", {}).get("Role"))
        if role is None or template["Resources"].get(role, {}).get("Type") != "AWS::IAM::Role":
            raise TemplateError(f"{lid}: its Role is not an AWS::IAM::Role of the template")
        roles[lid] = role
    return roles


# -- matching --------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM wildcards: `*` any run of characters, `?` one; nothing else is special (unlike fnmatch's [..]).
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def matches(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """Whether an IAM pattern (`*`, `?`) matches the value."""
    return _pattern(pattern, ignore_case).match(value) is not None


def _any(patterns: Any, value: str, ignore_case: bool = False) -> bool:
    return any(matches(str(p), value, ignore_case) for p in _as_list(patterns))


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, list[str]]) -> bool:
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    present = context.get(key.lower())
    wanted = [str(v) for v in _as_list(expected)]
    if base == "Null":
        return (present is None) == (wanted[0].lower() == "true")
    if present is None:
        return if_exists or base.startswith(("StringNot", "ArnNot"))
    negated = "Not" in base
    positive = base.replace("Not", "")

    def one(value: str) -> bool:
        if positive == "StringEquals":
            return value in wanted
        if positive == "StringEqualsIgnoreCase":
            return value.lower() in (w.lower() for w in wanted)
        if positive in ("StringLike", "ArnLike", "ArnEquals"):
            return any(matches(w, value) for w in wanted)
        if positive == "Bool":
            return value.lower() in (w.lower() for w in wanted)
        raise TemplateError(f"the condition operator {operator} is not emulated")

    results = [one(v) for v in present]
    if qualifier == "ForAllValues":
        held = all(results)
    else:  # single-valued keys, or ForAnyValue
        held = any(results)
    return not held if negated else held


def _conditions_hold(statement: Mapping[str, Any], context: Mapping[str, list[str]]) -> bool:
    return all(
        _condition_holds(operator, key, expected, context)
        for operator, conditions in (statement.get("Condition") or {}).items()
        for key, expected in conditions.items()
    )


def _statement_applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, list[str]]
) -> bool:
    if "Action" in statement and not _any(statement["Action"], action, ignore_case=True):
        return False
    if "NotAction" in statement and _any(statement["NotAction"], action, ignore_case=True):
        return False
    if "Resource" in statement and not _any(statement["Resource"], resource):
        return False
    if "NotResource" in statement and _any(statement["NotResource"], resource):
        return False
    return _conditions_hold(statement, context)


def decide(
    statements: Iterable[Mapping[str, Any]], action: str, resource: str, context: Mapping[str, list[str]]
) -> str:
    """ "allow", "deny" (an explicit Deny) or "implicit" (nothing allows it), as AWS evaluates identity policies."""
    allowed = False
    for statement in statements:
        if _statement_applies(statement, action, resource, context):
            if statement["Effect"] == "Deny":
                return "deny"
            allowed = True
    return "allow" if allowed else "implicit"


# -- requests -> actions ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """One thing IAM checks for a request: an action on a resource, with the request's condition keys."""

    action: str
    resource: str
    context: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def context_dict(self) -> dict[str, list[str]]:
        """The condition keys as a mapping (lower-case key -> values)."""
        return {k: list(v) for k, v in self.context}


def _ctx(**values: str | None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((k.replace("_", ":", 1).lower(), (v,)) for k, v in values.items() if v is not None)


def _table_arn(name: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def _queue_arn(url_or_name: str) -> str:
    if url_or_name.startswith("arn:"):
        return url_or_name
    name = url_or_name.rstrip("/").rsplit("/", 1)[-1]
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


_DDB_TRANSACT = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_SQS_BATCH = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def json_checks(service: str, operation: str, body: Mapping[str, Any]) -> list[Check]:
    """The IAM checks of a JSON-protocol request (DynamoDB, SQS, EventBridge, Step Functions, Secrets Manager)."""
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            return [
                Check(f"dynamodb:{_DDB_TRANSACT[kind]}", _table_arn(op["TableName"]))
                for item in body.get("TransactItems", [])
                for kind, op in item.items()
            ]
        if operation == "TransactGetItems":
            return [Check("dynamodb:GetItem", _table_arn(i["Get"]["TableName"])) for i in body.get("TransactItems", [])]
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [Check(f"dynamodb:{operation}", _table_arn(t)) for t in body.get("RequestItems", {})]
        table = body.get("TableName")
        if table is None:
            return [Check(f"dynamodb:{operation}", "*")]
        resource = _table_arn(table)
        if body.get("IndexName"):
            resource += f"/index/{body['IndexName']}"
        return [Check(f"dynamodb:{operation}", resource)]
    if service == "sqs":
        action = f"sqs:{_SQS_BATCH.get(operation, operation)}"
        target = body.get("QueueUrl") or body.get("QueueName")
        return [Check(action, _queue_arn(str(target)) if target else "*")]
    if service == "events":
        if operation == "PutEvents":
            buses = {str(e.get("EventBusName") or "default") for e in body.get("Entries", [])} or {"default"}
            return [Check("events:PutEvents", _bus_arn(b)) for b in sorted(buses)]
        return [Check(f"events:{operation}", "*")]
    if service == "states":
        target = body.get("stateMachineArn") or body.get("executionArn") or "*"
        return [Check(f"states:{operation}", str(target))]
    if service == "secretsmanager":
        return [Check(f"secretsmanager:{operation}", str(body.get("SecretId") or "*"))]
    return [Check(f"{service}:{operation}", "*")]


def _bus_arn(name: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}"


def _object_check(action: str, bucket: str, key: str, version: str | None) -> Check:
    if version is not None and action in ("s3:GetObject", "s3:DeleteObject"):
        action += "Version"
    return Check(action, f"arn:aws:s3:::{bucket}/{key}")


def _copy_source(header: str) -> Check:
    source = unquote(header.split("?", 1)[0]).lstrip("/")
    version = parse_qs(header.split("?", 1)[1]).get("versionId", [None])[0] if "?" in header else None
    bucket, _, key = source.partition("/")
    return _object_check("s3:GetObject", bucket, key, version)


_BUCKET_GET = {
    "versioning": "s3:GetBucketVersioning",
    "cors": "s3:GetBucketCORS",
    "notification": "s3:GetBucketNotification",
    "location": "s3:GetBucketLocation",
    "lifecycle": "s3:GetLifecycleConfiguration",
    "policy": "s3:GetBucketPolicy",
    "tagging": "s3:GetBucketTagging",
    "uploads": "s3:ListBucketMultipartUploads",
}
_BUCKET_PUT = {
    "versioning": "s3:PutBucketVersioning",
    "cors": "s3:PutBucketCORS",
    "notification": "s3:PutBucketNotification",
    "lifecycle": "s3:PutLifecycleConfiguration",
    "policy": "s3:PutBucketPolicy",
    "tagging": "s3:PutBucketTagging",
}


def s3_checks(method: str, raw_path: str, query: str, headers: Mapping[str, str], body: bytes) -> list[Check]:
    """The IAM checks of an S3 REST request (path-style), as S3 authorizes each operation."""
    path = unquote(urlsplit(raw_path).path)
    bucket, _, key = path.lstrip("/").partition("/")
    params = parse_qs(query, keep_blank_values=True)
    if not bucket:
        return [Check("s3:ListAllMyBuckets", "*")]
    if not key:
        return _bucket_checks(method, bucket, params, body)
    return _key_checks(method, bucket, key, params, {k.lower(): v for k, v in headers.items()})


def _bucket_checks(method: str, bucket: str, params: Mapping[str, list[str]], body: bytes) -> list[Check]:
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if method == "POST" and "delete" in params:
        return _delete_objects(bucket, body)
    sub = next((s for s in params if s in _BUCKET_GET or s in _BUCKET_PUT), None)
    if method in ("GET", "HEAD") and sub in _BUCKET_GET:
        return [Check(_BUCKET_GET[sub], bucket_arn)]
    if method == "PUT":
        return [Check(_BUCKET_PUT[sub] if sub in _BUCKET_PUT else "s3:CreateBucket", bucket_arn)]
    if method == "DELETE":
        return [Check("s3:DeleteBucket", bucket_arn)]
    listing = "s3:ListBucketVersions" if "versions" in params else "s3:ListBucket"
    context = _ctx(s3_prefix=params.get("prefix", [None])[0], s3_delimiter=params.get("delimiter", [None])[0])
    return [Check(listing, bucket_arn, context)]


def _key_checks(
    method: str, bucket: str, key: str, params: Mapping[str, list[str]], headers: Mapping[str, str]
) -> list[Check]:
    arn = f"arn:aws:s3:::{bucket}/{key}"
    version = params.get("versionId", [None])[0]
    if method in ("GET", "HEAD"):
        if "uploadId" in params:
            return [Check("s3:ListMultipartUploadParts", arn)]
        if "tagging" in params:
            return [Check("s3:GetObjectTagging", arn)]
        return [_object_check("s3:GetObject", bucket, key, version)]
    if method == "PUT":
        if "tagging" in params:
            return [Check("s3:PutObjectTagging", arn)]
        checks = [Check("s3:PutObject", arn)]
        if "x-amz-copy-source" in headers:  # CopyObject, UploadPartCopy: read the source, write the target
            checks.insert(0, _copy_source(headers["x-amz-copy-source"]))
        return checks
    if method == "POST":  # CreateMultipartUpload, CompleteMultipartUpload
        return [Check("s3:PutObject", arn)]
    if method == "DELETE":
        if "uploadId" in params:
            return [Check("s3:AbortMultipartUpload", arn)]
        return [_object_check("s3:DeleteObject", bucket, key, version)]
    return [Check(f"s3:{method}", arn)]


def _delete_objects(bucket: str, body: bytes) -> list[Check]:
    checks = []
    # The body comes from a principal whose signature was just verified (the runtime's own keys or a function's).
    for obj in ElementTree.fromstring(body or b"<Delete/>").iter():  # noqa: S314
        if obj.tag.rsplit("}", 1)[-1] != "Object":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: child.text or "" for child in obj}
        checks.append(_object_check("s3:DeleteObject", bucket, fields.get("Key", ""), fields.get("VersionId")))
    return checks


def lambda_checks(method: str, path: str) -> list[Check]:
    """Lambda's REST API: an invocation is lambda:InvokeFunction on the function."""
    parts = unquote(path).strip("/").split("/")
    if len(parts) >= 4 and parts[1] == "functions" and parts[3] == "invocations":
        name = parts[2]
        arn = name if name.startswith("arn:") else f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        return [Check("lambda:InvokeFunction", arn)]
    return [Check(f"lambda:{method}", "*")]


# -- enforcement and usage -------------------------------------------------------------------------------------------
class Enforcer:
    """Principals by access key id; authorizes checks and records what each principal used."""

    def __init__(self) -> None:
        self.principals: dict[str, Principal] = {}
        self._lock = threading.Lock()
        # (principal name, role, action, resource) -> (allowed, denied) counts
        self.used: dict[tuple[str, str, str, str], list[int]] = {}

    def add(self, principals: Iterable[Principal]) -> None:
        """Know these principals (by their access key ids)."""
        with self._lock:
            for principal in principals:
                self.principals[principal.access_key_id] = principal

    def authorize(self, principal: Principal, checks: Iterable[Check]) -> None:
        """Raise Denied at the first check the principal's policies do not allow; record every check."""
        for check in checks:
            decision = (
                "allow"
                if principal.unrestricted
                else decide(principal.statements, check.action, check.resource, check.context_dict())
            )
            if not principal.unrestricted:
                with self._lock:
                    counts = self.used.setdefault(
                        (principal.name, principal.role, check.action, check.resource), [0, 0]
                    )
                    counts[0 if decision == "allow" else 1] += 1
            if decision != "allow":
                raise Denied(principal, check.action, check.resource, explicit=decision == "deny")

    def usage(self) -> dict[str, Any]:
        """What was used, and what each role is granted (for the report)."""
        with self._lock:
            used = [
                {"function": n, "role": r, "action": a, "resource": res, "allowed": c[0], "denied": c[1]}
                for (n, r, a, res), c in sorted(self.used.items())
            ]
            roles = {p.role: p.statements for p in self.principals.values() if not p.unrestricted}
            functions = {p.name: p.role for p in self.principals.values() if not p.unrestricted}
        return {"used": used, "roles": roles, "functions": functions}


# -- the report ------------------------------------------------------------------------------------------------------
def _grants(statements: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, Mapping[str, Any]]]:
    return [
        (str(action), str(resource), statement)
        for statement in statements
        if statement.get("Effect") == "Allow"
        for action in _as_list(statement.get("Action", []))
        for resource in _as_list(statement.get("Resource", "*"))
    ]


def unused_grants(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """Per role: the granted (action on resource) never used in any recorded run, and those the platform uses
    (records oldest first)."""
    roles: dict[str, list[dict[str, Any]]] = {}
    names: dict[str, set[str]] = {}
    sources: dict[str, set[str]] = {}
    used: dict[str, list[tuple[str, str, dict[str, list[str]]]]] = {}
    for record in records:  # oldest first: the newest synthesized stack's grants are the ones reported
        if record.get("synthesized", True):
            roles.update(record.get("roles", {}))
        for fn, role in record.get("functions", {}).items():
            names.setdefault(role, set()).add(fn)
        for role, queues in record.get("event_sources", {}).items():
            sources.setdefault(role, set()).update(queues)
        for u in record.get("used", []):
            if u["allowed"]:
                used.setdefault(u["role"], []).append((u["action"], u["resource"], {}))
    report: dict[str, dict[str, list[str]]] = {}
    used = {role: [(a, _stable(r), c) for a, r, c in calls] for role, calls in used.items()}
    for role, statements in sorted(roles.items()):
        never, platform = [], []
        for action, resource, _ in _grants(statements):
            label = f"{action} on {resource}"
            if any(fnmatch.fnmatchcase(action, p) for p in PLATFORM_ACTIONS) or (
                action in EVENT_SOURCE_ACTIONS and resource in sources.get(role, set())
            ):
                platform.append(label)
                continue
            stable = _stable(resource)
            if not any(matches(action, a, ignore_case=True) and matches(stable, r) for a, r, _ in used.get(role, [])):
                never.append(label)
        report[role] = {"functions": sorted(names.get(role, set())), "never_used": never, "platform": platform}
    return report


def _stable(arn: str) -> str:
    """An ARN as it is in every run: a secret's ARN ends in 6 random characters Secrets Manager picks per start."""
    return re.sub(r"(:secret:.+)-[A-Za-z0-9]{6}$", r"\1-??????", arn)


def format_report(report: Mapping[str, Mapping[str, list[str]]]) -> str:
    """The report as text: per role (and its functions), the grants no recorded call used."""
    lines = []
    for role, entry in report.items():
        lines.append(f"{role} ({', '.join(entry['functions']) or 'no function ran'})")
        for label in entry["never_used"] or ["(every grant was used)"]:
            lines.append(f"  never used: {label}" if entry["never_used"] else f"  {label}")
        if entry["platform"]:
            lines.append(
                f"  for the Lambda service (logs, traces, its queue's event source mapping), not the code: "
                f"{len(entry['platform'])} grant(s)"
            )
    return "\n".join(lines)


def load_records(paths: Iterable[Any]) -> list[dict[str, Any]]:
    """The usage records the local runtimes left (one JSON file each)."""
    records = []
    for path in paths:
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return records
