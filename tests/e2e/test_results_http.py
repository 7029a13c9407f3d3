"""What a user does with a finished job over HTTP: expiry, delete, download variants, preview, legacy encodings."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
import requests

from tests.e2e.conftest import Server
from tests.helpers import email_csv, wait_for

pytestmark = pytest.mark.e2e


def s3(server: Server) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def post_job(
    session: requests.Session, server: Server, body: bytes, job_type: str = "email", filename: str = "leads.csv"
) -> requests.Response:
    return session.post(
        f"{server.base_url}/api/bulk-jobs",
        files={"file": (filename, body, "text/csv")},
        data={"type": job_type},
        timeout=60,
    )


def status(session: requests.Session, server: Server, job_id: str) -> dict[str, Any]:
    resp = session.get(f"{server.base_url}/api/bulk-jobs", params={"id": job_id}, timeout=30)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def finished_job(session: requests.Session, server: Server, body: bytes, **kwargs: str) -> dict[str, Any]:
    created = post_job(session, server, body, **kwargs)
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    return wait_for(
        lambda: (s := status(session, server, job_id))["result_ready"] and s,
        timeout=120,
        what="the job's result",
    )


def download(session: requests.Session, server: Server, job_id: str, **params: str) -> requests.Response:
    return session.get(
        f"{server.base_url}/api/bulk-jobs/download", params={"id": job_id, **params}, timeout=60, allow_redirects=False
    )


def test_a_result_that_is_gone_answers_410_and_the_status_says_not_ready(server: Server) -> None:
    # Given a completed job whose result file the bucket no longer has (what the retention rule does)
    session = server.session()
    job = finished_job(session, server, email_csv(20))
    assert job["result_expires_at"] > job["completed_at"]
    client = s3(server)
    for obj in client.list_objects_v2(Bucket=server.bucket, Prefix="results/").get("Contents", []):
        if job["id"] in obj["Key"]:
            client.delete_object(Bucket=server.bucket, Key=obj["Key"])
    # When the user downloads it
    resp = download(session, server, job["id"])
    # Then the answer is 410 result_expired, which no client retries (never a 503)
    assert resp.status_code == 410, resp.text
    assert resp.json()["error"] == "result_expired" and resp.json()["message"]
    # And the status no longer offers the result
    assert status(session, server, job["id"])["result_ready"] is False
