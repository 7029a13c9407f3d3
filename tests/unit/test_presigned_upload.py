"""Jobs whose file comes later through a presigned S3 form: creation, the signed policy, the request body rules."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from functions.adapters.aws import clear_clients
from functions.adapters.blobs import BlobStore
from functions.errors import InputError
from functions.handlers.routes.job_intake import parse_create_request
from functions.logic import clock, job_views, jobs
from functions.logic.sweeper import decide
from functions.models import Job, JobStatus
from tests.fakes import JobsInMemory


class Store(JobsInMemory):
    def put_new_job(self, job: Job) -> bool:
        if job.id in self.jobs:
            return False
        self.jobs[job.id] = job.model_copy()
        return True

    def create_job_reserving(self, job: Job, now: str, request_id: str | None = None) -> None:
        raise AssertionError("a job waiting for its file reserves nothing yet")


class Presigner:
    def __init__(self) -> None:
        self.signed: list[tuple[str, int, int]] = []

    def presigned_post(self, key: str, *, max_bytes: int, expires_in: int) -> tuple[str, dict[str, str]]:
        self.signed.append((key, max_bytes, expires_in))
        return "https://bucket.s3.amazonaws.com/", {"key": key, "policy": "p"}


def test_a_presigned_upload_job_waits_for_its_file_and_reserves_nothing() -> None:
    store, presigner = Store(), Presigner()
    before = datetime.now(UTC)
    # When a client asks for a job of a file it will upload itself
    job, form = jobs.create_upload_job(
        account_id="acct_a",
        job_type=" Email ",
        filename="leads.csv",
        column="Work Email",
        max_object_bytes=1024**3,
        ttl_seconds=600,
        store=store,
        blobs=presigner,
    )
    # Then the job waits for it, at the key the splitter routes to that job, with nothing reserved
    assert job.status == JobStatus.AWAITING_UPLOAD and job.type == "email" and job.column == "Work Email"
    assert job.source_key == f"uploads/acct_a/{job.id}.csv" and store.jobs[job.id].credits_reserved == 0
    assert job.total_rows is None
    # And the form is signed for exactly that key, the size limit and the lifetime, which the job remembers
    assert presigner.signed == [(job.source_key, 1024**3, 600)]
    expires = datetime.fromisoformat(str(job.upload_expires_at).replace("Z", "+00:00"))
    assert before + timedelta(seconds=599) <= expires <= datetime.now(UTC) + timedelta(seconds=601)
    assert form == {
        "method": "POST",
        "url": "https://bucket.s3.amazonaws.com/",
        "fields": {"key": job.source_key, "policy": "p"},
        "expires_at": job.upload_expires_at,
    }
    # And the create answer carries the form, the status view the expiry
    assert job_views.create_view(job, upload=form)["upload"] == form
    view = job_views.status_view(job)
    assert (view["status"], view["percent"], view["eta_seconds"]) == ("awaiting_upload", 0.0, None)
    assert view["upload_expires_at"] == job.upload_expires_at


def test_an_unknown_type_is_refused_before_anything_is_signed_or_stored() -> None:
    store, presigner = Store(), Presigner()
    with pytest.raises(InputError) as err:
        jobs.create_upload_job(
            account_id="a",
            job_type="fax",
            filename="f.csv",
            column=None,
            max_object_bytes=10,
            ttl_seconds=60,
            store=store,
            blobs=presigner,
        )
    assert err.value.code == "unsupported_type" and store.jobs == {} and presigner.signed == []


@pytest.fixture()
def offline_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Signing is local computation: any credentials, no endpoint reached.
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    clear_clients()
    yield
    clear_clients()


def test_the_form_is_signed_with_sigv4_for_one_key_a_size_range_and_an_expiry(offline_credentials: None) -> None:
    # When the bucket adapter signs a form for one upload key
    url, fields = BlobStore("data-bucket", client=object()).presigned_post(
        "uploads/acct_a/job_x.csv", max_bytes=1024**3, expires_in=900
    )
    # Then S3 will take exactly that key, 1 byte to 1 GiB, until the expiry, signed with Signature Version 4
    policy = json.loads(base64.b64decode(fields["policy"]))
    assert ["content-length-range", 1, 1024**3] in policy["conditions"]
    assert {"key": "uploads/acct_a/job_x.csv"} in policy["conditions"]
    assert {"bucket": "data-bucket"} in policy["conditions"]
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert timedelta(seconds=890) < expiration - datetime.now(UTC) <= timedelta(seconds=900)
    assert fields["key"] == "uploads/acct_a/job_x.csv"
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256" and fields["x-amz-signature"]
    assert "AWSAccessKeyId" not in fields
    assert "data-bucket" in url and url.startswith("https://")


@pytest.mark.parametrize(
    ("body", "code", "parameter"),
    [
        (b'{"type": "email"}', "missing_parameter", "filename"),
        (b'{"type": "email", "filename": "a.csv", "url": "https://x.example/a.csv"}', "invalid_parameter", "url"),
        (b'{"filename": "a.csv"}', "missing_parameter", "type"),
        (b'{"type": "email", "filename": ""}', "invalid_parameter", "filename"),
        (b'{"type": "email", "filename": "' + b"a" * 256 + b'"}', "invalid_parameter", "filename"),
        (b'{"type": "email", "filename": "a.csv", "file": "x"}', "unknown_parameter", "file"),
        (b"[1, 2]", "invalid_body", None),
        (b"{not json", "invalid_body", None),
    ],
)
def test_a_json_create_body_that_is_not_one_is_refused_naming_the_field(
    body: bytes, code: str, parameter: str | None
) -> None:
    with pytest.raises(InputError) as err:
        parse_create_request(body)
    assert err.value.code == code
    assert err.value.details.get("parameter") == parameter


NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LIMITS = {
    "start_after": timedelta(minutes=15),
    "split_lease": timedelta(minutes=15),
    "stalled_after": timedelta(hours=6),
    "upload_grace": timedelta(minutes=5),
}


def waiting(expires_ago: timedelta) -> Job:
    return Job(
        id="job_x",
        account_id="a",
        type="email",
        status=JobStatus.AWAITING_UPLOAD,
        source_key="uploads/a/job_x.csv",
        created_at=clock.iso(NOW - timedelta(hours=2)),
        upload_expires_at=clock.iso(NOW - expires_ago),
    )


def test_the_sweeper_fails_an_upload_that_never_came_once_the_grace_after_expiry_is_over() -> None:
    assert decide(waiting(timedelta(minutes=6)), NOW, **LIMITS) == ("fail", "upload_expired")
    # An upload that began just before the form expired may still be arriving
    assert decide(waiting(timedelta(minutes=4)), NOW, **LIMITS) is None
    assert decide(waiting(-timedelta(minutes=30)), NOW, **LIMITS) is None
