"""The local runtime's IAM and signature checks (local/iam.py, local/signing.py) against what AWS does, with requests
signed by botocore itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from local import iam, signing

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/jobs"
BUCKET = "arn:aws:s3:::bucket"
STATEMENTS: list[dict[str, Any]] = [
    {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"], "Resource": TABLE},
    {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"{BUCKET}/parts/*"},
    {"Effect": "Allow", "Action": "s3:Get*", "Resource": f"{BUCKET}/results/????.csv"},
    {
        "Effect": "Allow",
        "Action": "s3:ListBucketVersions",
        "Resource": BUCKET,
        "Condition": {"StringLike": {"s3:prefix": ["parts/*"]}},
    },
    {"Effect": "Deny", "Action": "s3:PutObject", "Resource": f"{BUCKET}/parts/secret/*"},
]


def decide(action: str, resource: str, **context: str) -> str:
    return iam.decide(STATEMENTS, action, resource, {k.replace("_", ":"): [v] for k, v in context.items()})


def test_actions_and_resources_match_with_wildcards_and_an_explicit_deny_wins() -> None:
    assert decide("dynamodb:GetItem", TABLE) == "allow"
    assert decide("DynamoDB:getitem", TABLE) == "allow"  # actions are case-insensitive
    assert decide("dynamodb:PutItem", TABLE) == "implicit"
    assert decide("dynamodb:GetItem", TABLE + "/index/by_account") == "implicit"
    assert decide("s3:PutObject", f"{BUCKET}/parts/job/00001.csv") == "allow"
    assert decide("s3:PutObject", f"{BUCKET}/uploads/a.csv") == "implicit"
    assert decide("s3:PutObject", f"{BUCKET}/parts/secret/x") == "deny"
    assert decide("s3:GetObject", f"{BUCKET}/results/abcd.csv") == "allow"
    assert decide("s3:GetObject", f"{BUCKET}/results/abcde.csv") == "implicit"  # ? is one character


def test_a_condition_holds_only_with_its_key() -> None:
    assert decide("s3:ListBucketVersions", BUCKET, s3_prefix="parts/job/") == "allow"
    assert decide("s3:ListBucketVersions", BUCKET, s3_prefix="results/") == "implicit"
    assert decide("s3:ListBucketVersions", BUCKET) == "implicit"  # no prefix: the condition cannot hold


def test_requests_are_authorized_per_operation_as_aws_does() -> None:
    transact = {
        "TransactItems": [
            {"Put": {"TableName": "jobs"}},
            {"Update": {"TableName": "jobs"}},
            {"ConditionCheck": {"TableName": "accounts"}},
        ]
    }
    assert [(c.action, c.resource) for c in iam.json_checks("dynamodb", "TransactWriteItems", transact)] == [
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:UpdateItem", TABLE),
        ("dynamodb:ConditionCheckItem", "arn:aws:dynamodb:us-east-1:123456789012:table/accounts"),
    ]
    query = iam.json_checks("dynamodb", "Query", {"TableName": "jobs", "IndexName": "by_account"})
    assert [c.resource for c in query] == [TABLE + "/index/by_account"]
    batch = iam.json_checks("sqs", "SendMessageBatch", {"QueueUrl": "http://x/123456789012/work"})
    assert [(c.action, c.resource) for c in batch] == [("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:work")]
    copy = iam.s3_checks(
        "PUT", "/bucket/results/r.csv", "partNumber=1&uploadId=u", {"x-amz-copy-source": "/bucket/parts/p.csv"}, b""
    )
    assert [(c.action, c.resource) for c in copy] == [
        ("s3:GetObject", f"{BUCKET}/parts/p.csv"),
        ("s3:PutObject", f"{BUCKET}/results/r.csv"),
    ]
    delete = (
        b"<Delete><Object><Key>parts/a</Key><VersionId>v1</VersionId></Object>"
        b"<Object><Key>parts/b</Key></Object></Delete>"
    )
    assert [(c.action, c.resource) for c in iam.s3_checks("POST", "/bucket", "delete", {}, delete)] == [
        ("s3:DeleteObjectVersion", f"{BUCKET}/parts/a"),
        ("s3:DeleteObject", f"{BUCKET}/parts/b"),
    ]
    listing = iam.s3_checks("GET", "/bucket", "versions&prefix=parts%2Fj%2F", {}, b"")
    assert listing[0].action == "s3:ListBucketVersions" and listing[0].context_dict() == {"s3:prefix": ["parts/j/"]}


def test_a_denied_call_names_the_action_and_resource_as_aws_does() -> None:
    principal = iam.Principal("bulkapi-worker", "WorkerRole", "AK", "SK", STATEMENTS)
    enforcer = iam.Enforcer()
    with pytest.raises(iam.Denied) as denied:
        enforcer.authorize(principal, [iam.Check("s3:PutObject", f"{BUCKET}/uploads/a.csv")])
    assert str(denied.value) == (
        "User: arn:aws:sts::123456789012:assumed-role/WorkerRole/bulkapi-worker is not authorized to perform: "
        f"s3:PutObject on resource: {BUCKET}/uploads/a.csv because no identity-based policy allows the s3:PutObject "
        "action"
    )
    assert enforcer.usage()["used"][0]["denied"] == 1


def signed(service: str, url: str, body: bytes, headers: dict[str, str], secret: str = "SK") -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    auth = (S3SigV4Auth if service == "s3" else SigV4Auth)(Credentials("AK", secret), service, "us-east-1")
    auth.add_auth(request)
    out = {k.lower(): v for k, v in request.headers.items()}
    out["host"] = urlsplit(url).netloc
    return out


def verify(service: str, url: str, body: bytes, headers: dict[str, str], now: datetime | None = None) -> None:
    _, parts = signing.header_credential(headers["authorization"])
    split = urlsplit(url)
    signing.verify_header(
        "SK", parts, "POST", split.path, split.query, headers, body, service, now or datetime.now(UTC)
    )


def test_a_botocore_signature_verifies_and_a_changed_request_does_not() -> None:
    url = "http://127.0.0.1:5000/"
    body = json.dumps({"TableName": "jobs"}).encode()
    headers = signed("dynamodb", url, body, {"X-Amz-Target": "DynamoDB_20120810.Scan"})
    verify("dynamodb", url, body, headers)
    with pytest.raises(signing.Refused) as changed:
        verify("dynamodb", url, body.replace(b"jobs", b"other"), headers)
    assert changed.value.code == "InvalidSignatureException"
    with pytest.raises(signing.Refused) as late:
        verify("dynamodb", url, body, headers, now=datetime.now(UTC) + timedelta(minutes=20))
    assert late.value.code == "InvalidSignatureException" and "expired" in late.value.message
    lambda_url = (
        "http://127.0.0.1:5000/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af/invocations"
    )
    verify("lambda", lambda_url, b"{}", signed("lambda", lambda_url, b"{}", {}))


def test_an_s3_payload_that_is_not_the_signed_one_is_refused() -> None:
    url = "http://127.0.0.1:5000/bucket/parts/a.csv"
    headers = signed("s3", url, b"abc", {})
    verify("s3", url, b"abc", headers)
    with pytest.raises(signing.Refused) as swapped:
        verify("s3", url, b"abd", headers)
    assert swapped.value.code == "XAmzContentSHA256Mismatch"


def s3_client() -> Any:
    return boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:5000",
        region_name="us-east-1",
        aws_access_key_id="AK",
        aws_secret_access_key="SK",
        config=Config(signature_version="s3v4"),
    )


def test_a_presigned_url_verifies_until_it_expires() -> None:
    url = s3_client().generate_presigned_url("get_object", Params={"Bucket": "bucket", "Key": "results/a b.csv"})
    split = urlsplit(url)
    params = parse_qs(split.query)
    headers = {"host": split.netloc}
    signing.verify_query("SK", params, "GET", split.path, split.query, headers, datetime.now(UTC))
    with pytest.raises(signing.Refused) as expired:
        signing.verify_query(
            "SK", params, "GET", split.path, split.query, headers, datetime.now(UTC) + timedelta(hours=2)
        )
    assert (expired.value.status, expired.value.code) == (403, "AccessDenied")
    with pytest.raises(signing.Refused) as other:
        signing.verify_query("SK", params, "GET", "/bucket/results/b.csv", split.query, headers, datetime.now(UTC))
    assert other.value.code == "SignatureDoesNotMatch"


def presigned_post(max_bytes: int = 100, expires: int = 60) -> dict[str, str]:
    post = s3_client().generate_presigned_post(
        Bucket="bucket",
        Key="uploads/acct/job.csv",
        Conditions=[["content-length-range", 1, max_bytes]],
        ExpiresIn=expires,
    )
    return {k.lower(): v for k, v in post["fields"].items()}


def test_a_presigned_post_is_held_to_its_policy() -> None:
    fields, now = presigned_post(), datetime.now(UTC)
    signing.verify_form("SK", "bucket", fields, 50, now)
    with pytest.raises(signing.Refused) as key:
        signing.verify_form("SK", "bucket", {**fields, "key": "uploads/other/job.csv"}, 50, now)
    assert key.value.code == "AccessDenied" and "Policy Condition failed" in key.value.message
    with pytest.raises(signing.Refused) as large:
        signing.verify_form("SK", "bucket", fields, 101, now)
    assert (large.value.status, large.value.code, large.value.details["MaxSizeAllowed"]) == (
        400,
        "EntityTooLarge",
        "100",
    )
    with pytest.raises(signing.Refused) as empty:
        signing.verify_form("SK", "bucket", fields, 0, now)
    assert empty.value.code == "EntityTooSmall"
    with pytest.raises(signing.Refused) as late:
        signing.verify_form("SK", "bucket", fields, 50, now + timedelta(minutes=2))
    assert "Policy expired" in late.value.message
    with pytest.raises(signing.Refused) as bucket:
        signing.verify_form("SK", "other-bucket", fields, 50, now)
    assert "bucket" in bucket.value.message
    with pytest.raises(signing.Refused) as extra:
        signing.verify_form("SK", "bucket", {**fields, "acl": "public-read"}, 50, now)
    assert "Extra input fields: acl" in extra.value.message
    with pytest.raises(signing.Refused) as forged:
        signing.verify_form("SK", "bucket", {**fields, "x-amz-signature": "0" * 64}, 50, now)
    assert forged.value.code == "SignatureDoesNotMatch"


def test_roles_come_from_the_template_and_what_cannot_run_is_refused() -> None:
    template: dict[str, Any] = {
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "ManagedPolicyArns": ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]
                },
            },
            "Policy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "Roles": [{"Ref": "Role"}],
                    "PolicyDocument": {
                        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Ref": "Name"}}]
                    },
                },
            },
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]}}},
        }
    }
    resolve = lambda value: json.loads(json.dumps(value).replace('{"Ref": "Name"}', '"arn:aws:s3:::b/*"'))  # noqa: E731
    statements = iam.role_statements(template, resolve)["Role"]
    assert {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"} in statements
    assert any("logs:PutLogEvents" in s["Action"] for s in statements)
    assert iam.function_roles(template) == {"Fn": "Role"}
    condition = {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalTag/team": "x"}},
    }
    template["Resources"]["Policy"]["Properties"]["PolicyDocument"]["Statement"].append(condition)
    with pytest.raises(iam.TemplateError, match="Policy: the condition key aws:PrincipalTag/team is not supplied"):
        iam.role_statements(template, resolve)


def test_the_report_lists_grants_no_run_used_and_the_platforms_apart() -> None:
    queue = "arn:aws:sqs:us-east-1:123456789012:work"
    statements = [
        *STATEMENTS[:2],
        {"Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:GetQueueUrl"], "Resource": queue},
    ]
    used = {"function": "worker", "role": "Role", "allowed": 3, "denied": 0}
    records = [
        {
            "roles": {"Role": statements},
            "functions": {"worker": "Role"},
            "event_sources": {"Role": [queue]},
            "used": [
                {**used, "action": "dynamodb:GetItem", "resource": TABLE},
                {**used, "action": "s3:PutObject", "resource": f"{BUCKET}/parts/j/00001.csv"},
            ],
        },
        # A run of an altered template: what it used counts, its grants do not replace the stack's
        {"roles": {"Role": []}, "functions": {}, "used": [], "synthesized": False},
    ]
    report = iam.unused_grants(records)["Role"]
    assert report["never_used"] == [f"dynamodb:UpdateItem on {TABLE}"]
    assert sorted(report["platform"]) == sorted(
        ["logs:PutLogEvents on *", f"sqs:ReceiveMessage on {queue}", f"sqs:GetQueueUrl on {queue}"]
    )
    assert "never used: dynamodb:UpdateItem" in iam.format_report(iam.unused_grants(records))
