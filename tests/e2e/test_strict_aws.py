"""`bulkapi serve` as strict as AWS: S3 checks presigned forms and URLs, the emulation answers only its own keys and
no browser origin, and each function may do only what its role in the template allows."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import boto3
import pytest
import requests
from botocore.config import Config

from local.template import load_template
from tests.e2e.conftest import Server, new_account, start_server, status, stop_server, wait_ended
from tests.helpers import email_csv, wait_for

pytestmark = pytest.mark.e2e

UPLOAD_TTL_SECONDS = 20
# The form cap of the finding: 3 MB, and a 3.84 MB file sent to it.
FORM_CAP = 3_000_000


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("strict"),
        BULKAPI_DEV_TOKEN="e2e-strict-key",
        BULKAPI_UPLOAD_URL_TTL_SECONDS=str(UPLOAD_TTL_SECONDS),
        BULKAPI_MAX_UPLOAD_OBJECT_BYTES=str(FORM_CAP),
    )
    yield srv
    stop_server(srv)


def upload_job(server: Server, key: str, filename: str = "leads.csv") -> dict[str, Any]:
    created = requests.post(
        f"{server.base_url}/api/bulk-jobs",
        headers={"Authorization": f"Bearer {key}"},
        json={"type": "email", "filename": filename},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


def send(form: dict[str, Any], body: bytes, **fields: str) -> requests.Response:
    return requests.post(form["url"], data={**form["fields"], **fields}, files={"file": ("x.csv", body)}, timeout=60)


def s3_error(resp: requests.Response) -> str:
    assert resp.headers["Content-Type"].startswith("application/xml"), resp.text
    return resp.text.split("<Code>", 1)[1].split("</Code>", 1)[0]


def versions(server: Server, key: str) -> list[dict[str, Any]]:
    listed = server.aws("s3").list_object_versions(Bucket=server.bucket, Prefix=key)
    return [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]


def test_a_form_with_its_key_changed_to_another_accounts_job_is_refused(strict_server: Server) -> None:
    # Given two accounts, each with a job waiting for its upload
    mine, theirs = new_account(strict_server, 1_000), new_account(strict_server, 1_000)
    my_job, their_job = upload_job(strict_server, mine.key), upload_job(strict_server, theirs.key)
    # When my form is sent with its key changed to the other account's job
    sent = send(my_job["upload"], email_csv(10), key=f"uploads/{theirs.id}/{their_job['id']}.csv")
    # Then S3 refuses it as the policy fixes the key, and the other job has no file, ran nothing, charged nothing
    assert sent.status_code == 403 and s3_error(sent) == "AccessDenied"
    assert "Policy Condition failed" in sent.text and my_job["id"] in sent.text
    assert versions(strict_server, f"uploads/{theirs.id}/") == []
    assert status(strict_server.session(theirs.key), strict_server, their_job["id"])["status"] == "awaiting_upload"
    assert theirs.balance == 1_000


def test_a_file_over_the_forms_size_cap_is_refused_with_entity_too_large(strict_server: Server) -> None:
    account = new_account(strict_server, 200_000)
    job = upload_job(strict_server, account.key)
    body = email_csv(70_000)
    assert len(body) > FORM_CAP
    sent = send(job["upload"], body)
    assert sent.status_code == 400 and s3_error(sent) == "EntityTooLarge"
    assert f"<MaxSizeAllowed>{FORM_CAP}</MaxSizeAllowed>" in sent.text
    assert versions(strict_server, f"uploads/{account.id}/") == []


def test_a_field_the_policy_does_not_name_is_refused(strict_server: Server) -> None:
    account = new_account(strict_server, 1_000)
    job = upload_job(strict_server, account.key)
    sent = send(job["upload"], email_csv(3), **{"x-amz-meta-column": "Email"})
    assert sent.status_code == 403 and "Extra input fields: x-amz-meta-column" in sent.text


@pytest.mark.slow
def test_a_form_used_after_it_expired_is_refused(strict_server: Server) -> None:
    account = new_account(strict_server, 1_000)
    job = upload_job(strict_server, account.key)
    expires = job["upload"]["expires_at"]
    wait_for(
        lambda: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) > expires[:19],
        timeout=UPLOAD_TTL_SECONDS + 10,
        what="the form to expire",
    )
    sent = send(job["upload"], email_csv(3))
    assert sent.status_code == 403 and s3_error(sent) == "AccessDenied" and "Policy expired" in sent.text
    assert versions(strict_server, job["upload"]["fields"]["key"]) == []


def test_a_form_sent_again_after_its_job_was_purged_leaves_no_file(strict_server: Server) -> None:
    # Given a job that completed through its form and was then purged by its owner
    account = new_account(strict_server, 1_000)
    session = strict_server.session(account.key)
    job = upload_job(strict_server, account.key)
    key = job["upload"]["fields"]["key"]
    assert send(job["upload"], email_csv(3)).status_code == 204
    assert wait_ended(session, strict_server, job["id"], timeout=60)["status"] == "completed"
    # (its download link is a presigned URL that S3 accepts: SigV4, signed by the api function's role)
    link = session.get(
        f"{strict_server.base_url}/api/bulk-jobs/download",
        params={"id": job["id"]},
        headers={"Accept": "application/json"},
        timeout=30,
    ).json()["url"]
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in link
    downloaded = requests.get(link, timeout=30)
    assert downloaded.status_code == 200 and b"status" in downloaded.content
    # (an ended job is purged with purge=true once its credits are settled; until then it answers 409)
    wait_for(
        lambda: (
            session.delete(
                f"{strict_server.base_url}/api/bulk-jobs", params={"id": job["id"], "purge": "true"}, timeout=30
            )
            .json()
            .get("status")
            == "deleted"
        ),
        timeout=30,
        what="the job to be purged",
    )
    assert versions(strict_server, key) == []
    # When the still valid form is sent again (S3 accepts a signed form until it expires)
    assert send(job["upload"], email_csv(3)).status_code == 204
    # Then the file is deleted, every version, and nothing is charged
    wait_for(lambda: versions(strict_server, key) == [], timeout=30, what="the orphan upload to be deleted")
    assert account.balance == 1_000 - 3
    account.assert_balanced()


def test_a_presigned_download_checks_its_signature_and_expiry(strict_server: Server) -> None:
    s3 = strict_server.aws("s3")
    s3.put_object(Bucket=strict_server.bucket, Key="results/x/y.csv", Body=b"a,b\n")
    target = {"Bucket": strict_server.bucket, "Key": "results/x/y.csv"}
    # botocore's default presigning (Signature Version 2) is refused, as by buckets created since 2020
    assert (
        s3_error(requests.get(s3.generate_presigned_url("get_object", Params=target), timeout=10)) == "InvalidRequest"
    )
    s3 = strict_server.aws("s3", Config(signature_version="s3v4"))
    url = s3.generate_presigned_url("get_object", Params=target)
    assert requests.get(url, timeout=10).content == b"a,b\n"
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    other_key = urlunsplit(parts._replace(path=parts.path.replace("y.csv", "z.csv")))
    assert s3_error(requests.get(other_key, timeout=10)) == "SignatureDoesNotMatch"
    longer = urlunsplit(parts._replace(query=urlencode({**query, "X-Amz-Expires": "999999"})))
    assert s3_error(requests.get(longer, timeout=10)) == "SignatureDoesNotMatch"
    expired = s3.generate_presigned_url("get_object", Params=target, ExpiresIn=1)
    wait_for(lambda: requests.get(expired, timeout=10).status_code == 403, timeout=10, what="the URL to expire")
    assert "Request has expired" in requests.get(expired, timeout=10).text


def test_the_emulation_answers_no_browser_and_no_unknown_key(strict_server: Server) -> None:
    # A page on another origin sends a DynamoDB Scan (the finding): refused, and no CORS header
    scan = requests.post(
        strict_server.s3_endpoint + "/",
        headers={
            "Origin": "https://evil.example",
            "X-Amz-Target": "DynamoDB_20120810.Scan",
            "Content-Type": "application/x-amz-json-1.0",
        },
        data=json.dumps({"TableName": strict_server.table}),
        timeout=10,
    )
    assert scan.status_code == 400 and "MissingAuthenticationToken" in scan.text
    assert not [h for h in scan.headers if h.lower().startswith("access-control-")]
    preflight = requests.options(
        strict_server.s3_endpoint + "/",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
    # A client with keys of its own ("local"/"local" worked before) is refused by every service
    foreign = {"aws_access_key_id": "local", "aws_secret_access_key": "local", "region_name": "us-east-1"}
    ddb = boto3.client("dynamodb", endpoint_url=strict_server.s3_endpoint, **foreign)
    with pytest.raises(ddb.exceptions.ClientError, match="UnrecognizedClientException"):
        ddb.scan(TableName=strict_server.table)
    s3 = boto3.client("s3", endpoint_url=strict_server.s3_endpoint, **foreign)
    with pytest.raises(s3.exceptions.ClientError, match="InvalidAccessKeyId"):
        s3.list_objects_v2(Bucket=strict_server.bucket)
    # A known key id with a wrong secret: the signature does not match
    keys = json.loads(Path(str(strict_server.credentials_path)).read_text())
    forged = boto3.client(
        "s3",
        endpoint_url=strict_server.s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=keys["access_key_id"],
        aws_secret_access_key="guessed",
    )
    with pytest.raises(forged.exceptions.ClientError, match="SignatureDoesNotMatch"):
        forged.list_objects_v2(Bucket=strict_server.bucket)


def invoke_url_of(server: Server) -> str:
    """The runtime's invoke endpoint, as any local user finds it: in the emulation process's command line."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if ppid == server.process.pid and b"--invoke-url" in args:
            return args[args.index(b"--invoke-url") + 1].decode()
    raise AssertionError("no emulation process under the server")


def test_the_invoke_endpoint_runs_nothing_for_anyone_but_the_emulation(strict_server: Server) -> None:
    # Found from outside: a POST to the loopback invoke endpoint ran any function with any event, as Step Functions
    # would. Now a caller without the emulation's token, a web page included, gets 403 and nothing runs.
    url = invoke_url_of(strict_server)
    acct = new_account(strict_server, credits=0)
    event = {"job_id": "j_forged", "account_id": acct.id}
    for headers in ({}, {"Origin": "https://evil.example"}, {"X-Bulkapi-Invoke-Token": "guessed"}):
        resp = requests.post(url, json={"function": "finalizer", "event": event}, headers=headers, timeout=10)
        assert resp.status_code == 403, (headers, resp.text)
        assert resp.content == b"" and "access-control-allow-origin" not in resp.headers
    # The runtime's own path still works: a job runs through the finalizer (invoked by Step Functions via this endpoint)
    session = strict_server.session()
    job = session.post(
        f"{strict_server.base_url}/api/bulk-jobs",
        files={"file": ("a.csv", email_csv(3))},
        data={"type": "email"},
        timeout=30,
    )
    assert job.status_code == 202, job.text
    assert wait_ended(session, strict_server, job.json()["id"], timeout=60)["status"] == "completed"


def test_the_runtimes_keys_are_readable_by_its_user_only(strict_server: Server) -> None:
    path = Path(str(strict_server.credentials_path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert strict_server.aws("dynamodb").describe_table(TableName=strict_server.table)["Table"]


def without_worker_part_writes(template: dict[str, Any]) -> dict[str, Any]:
    """The template with the worker's s3:PutObject on parts/* taken out of its role's policy."""
    resources = template["Resources"]
    worker = next(
        r for r in resources.values() if r["Properties"].get("Handler") == "functions.handlers.worker.lambda_handler"
    )
    role = worker["Properties"]["Role"]["Fn::GetAtt"][0]
    policy = next(
        r for r in resources.values() if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
    )
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    kept = [s for s in statements if "parts/" not in json.dumps(s.get("Resource")) or s["Action"] != "s3:PutObject"]
    assert len(kept) == len(statements) - 1
    policy["Properties"]["PolicyDocument"]["Statement"] = kept
    return template


@pytest.mark.slow
def test_a_worker_denied_its_part_writes_does_not_complete_the_job_silently(tmp_path: Path) -> None:
    # Given the stack's template with one grant removed: the worker may not write part files
    template = tmp_path / "template.json"
    template.write_text(json.dumps(without_worker_part_writes(load_template())))
    server = start_server(tmp_path, "--template", str(template), BULKAPI_DEV_TOKEN="e2e-denied-key")
    try:
        # When a job runs
        session = server.session()
        created = session.post(
            f"{server.base_url}/api/bulk-jobs",
            files={"file": ("leads.csv", email_csv(20), "text/csv")},
            data={"type": "email"},
            timeout=60,
        )
        assert created.status_code == 202, created.text
        final = wait_ended(session, server, created.json()["id"], timeout=120)
        # Then no row succeeds: the batch is retried, dead-lettered and its rows marked failed
        assert final["succeeded"] == 0 and final["failed"] == 20, final
        # And the worker's log names the denied action and the part file's ARN
        log = Path(str(server.log_path)).read_text()
        assert "AccessDenied" in log and "not authorized to perform: s3:PutObject" in log
        assert f"arn:aws:s3:::{server.bucket}/parts/" in log
    finally:
        stop_server(server)


def test_a_template_the_runtime_cannot_run_is_refused_naming_the_resource(tmp_path: Path) -> None:
    template = load_template()
    template["Resources"]["Stream"] = {"Type": "AWS::Kinesis::Stream", "Properties": {}}
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    import subprocess
    import sys

    from tests.e2e.conftest import ROOT

    out = subprocess.run(
        [sys.executable, "-m", "local.cli", "serve", "--port", "0", "--template", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 2
    assert "Stream: the resource type AWS::Kinesis::Stream is not emulated" in out.stderr
