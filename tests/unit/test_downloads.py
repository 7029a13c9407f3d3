"""Downloads: expiry, the file's name, inline or redirect; variants: their keys, parameters and streaming build."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.errors import ConflictError, GoneError
from functions.logic import downloads, job_views
from functions.models import Job, JobStatus

WRITTEN = "2030-01-01T10:00:00.000Z"


def finished(**fields: Any) -> Job:
    values: dict[str, Any] = {
        "id": "job_aaaaaaaaaaaaaaaaaaaa",
        "account_id": "acct_a",
        "type": "email",
        "status": JobStatus.COMPLETED,
        "source_key": "uploads/acct_a/job_aaaaaaaaaaaaaaaaaaaa.csv",
        "filename": "leads.csv",
        "created_at": "2030-01-01T09:59:00.000Z",
        "completed_at": WRITTEN,
        "total_rows": 3,
        "processed": 3,
        "result_key": "results/acct_a/job_aaaaaaaaaaaaaaaaaaaa.csv",
        "result_at": WRITTEN,
    }
    values.update(fields)
    return Job.model_validate(values)


def at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


class Bucket:
    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects = dict(objects or {})
        self.presigned: list[tuple[str, str]] = []

    def head(self, key: str) -> dict[str, Any] | None:
        return {"ContentLength": len(self.objects[key])} if key in self.objects else None

    def get_if_exists(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def get_if_small(self, key: str, max_bytes: int) -> tuple[int, bytes | None] | None:
        if key not in self.objects:
            return None
        data = self.objects[key]
        return len(data), (data if len(data) <= max_bytes else None)

    def presigned_get(self, key: str, expires: int, disposition: str) -> str:
        self.presigned.append((key, disposition))
        return f"https://s3.example/{key}?ttl={expires}"

    def purge(self, prefix: str, *, exact: bool = False) -> int:
        gone = [k for k in self.objects if (k == prefix if exact else k.startswith(prefix))]
        for key in gone:
            del self.objects[key]
        return len(gone)


# --- expiry -------------------------------------------------------------------------------------------------------


def test_the_status_says_when_the_result_expires_and_stops_offering_it_then() -> None:
    # Given a result written at 10:00 on Jan 1st, kept 30 days
    job = finished()
    # When the status is read the day before and at the expiry
    before = job_views.status_view(job, at("2030-01-30T10:00:00.000Z"), retention_days=30)
    after = job_views.status_view(job, at("2030-01-31T10:00:00.000Z"), retention_days=30)
    # Then both name the same expiry, and only the first offers the result
    assert before["result_expires_at"] == after["result_expires_at"] == "2030-01-31T10:00:00.000Z"
    assert (before["result_ready"], after["result_ready"]) == (True, False)


def test_a_job_without_result_has_no_expiry() -> None:
    view = job_views.status_view(finished(result_key=None, result_at=None), retention_days=30)
    assert view["result_expires_at"] is None and view["result_ready"] is False


def test_download_after_the_expiry_is_410_result_expired() -> None:
    # Given an expired result whose object the lifecycle rule has not yet removed
    job = finished()
    # When it is checked for download after its expiry
    with pytest.raises(GoneError) as err:
        downloads.check_result(job, at("2030-02-01T00:00:00.000Z"), 30)
    # Then it is 410 result_expired, not a server error
    assert (err.value.status_code, err.value.code) == (410, "result_expired")
    # While the day before it is still downloadable
    assert downloads.check_result(job, at("2030-01-30T00:00:00.000Z"), 30) == job.result_key


def test_a_missing_result_object_is_410_and_the_status_says_not_ready() -> None:
    # Given a result within its retention whose object is gone
    job, bucket = finished(), Bucket()
    now = at("2030-01-02T00:00:00.000Z")
    # Then the download answers 410
    with pytest.raises(GoneError):
        downloads.deliver(
            job, job.result_key or "", blobs=bucket, extension="csv", content_type="text/csv", inline_max=10,
            url_ttl_seconds=60,
        )  # fmt: skip
    # And the status does not offer it
    present = downloads.result_present(job, bucket, now, 30)
    assert job_views.status_view(job, now, retention_days=30, result_present=present)["result_ready"] is False


def test_before_the_end_and_after_a_failure_without_rows_the_download_is_409() -> None:
    now = at("2030-01-02T00:00:00.000Z")
    with pytest.raises(ConflictError) as running:
        downloads.check_result(finished(status=JobStatus.PROCESSING, result_key=None), now, 30)
    with pytest.raises(ConflictError) as failed:
        downloads.check_result(finished(status=JobStatus.FAILED, processed=0, error="no_rows"), now, 30)
    assert (running.value.code, failed.value.code) == ("job_not_finished", "job_failed")


def test_a_failure_without_rows_is_not_offered_as_a_result_even_when_the_finalizer_wrote_one() -> None:
    # Given a job that failed before any row was processed (a refused fetch), whose finalizer still recorded a result
    now = at("2030-01-02T00:00:00.000Z")
    job = finished(status=JobStatus.FAILED, processed=0, total_rows=None, error="fetch_blocked")
    bucket = Bucket({job.result_key: b""})
    # When its status is read
    present = downloads.result_present(job, bucket, now, 30)
    view = job_views.status_view(job, now, retention_days=30, result_present=present)
    # Then it offers no result, as the download (409 job_failed) says
    assert (view["result_ready"], view["result_expires_at"]) == (False, None)
    assert downloads.variants_view(job, [], view["result_ready"]) == []
    with pytest.raises(ConflictError, match="no result"):
        downloads.check_result(job, now, 30)


# --- names and delivery -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upload", "extension", "name"),
    [
        ("leads.csv", "csv", "leads.enriched.csv"),
        ("leads.csv", "jsonl", "leads.enriched.jsonl"),
        ("C:\\Users\\ada\\Q3 leads.txt", "csv", "Q3 leads.enriched.csv"),
        ('we"ird;name.csv', "csv", "we_ird_name.enriched.csv"),
        ("", "csv", "job_aaaaaaaaaaaaaaaaaaaa.enriched.csv"),
    ],
)
def test_the_download_is_named_after_the_upload(upload: str, extension: str, name: str) -> None:
    assert downloads.download_name(upload, "job_aaaaaaaaaaaaaaaaaaaa", extension) == name


def test_a_non_ascii_name_keeps_its_letters_for_clients_that_read_filename_star() -> None:
    disposition = downloads.content_disposition("Łódź kontakty.enriched.csv")
    assert disposition.startswith('attachment; filename="odz kontakty.enriched.csv"')
    assert "filename*=UTF-8''%C5%81%C3%B3d%C5%BA%20kontakty.enriched.csv" in disposition


def test_small_results_are_inline_and_large_ones_a_redirect_named_for_the_browser() -> None:
    job = finished()
    key = job.result_key or ""
    small = downloads.deliver(
        job, key, blobs=Bucket({key: b"abc"}), extension="csv", content_type="text/csv", inline_max=10,
        url_ttl_seconds=60,
    )  # fmt: skip
    assert (
        small.body == b"abc" and small.url is None and small.disposition == 'attachment; filename="leads.enriched.csv"'
    )
    bucket = Bucket({key: b"x" * 11})
    large = downloads.deliver(
        job, key, blobs=bucket, extension="csv", content_type="text/csv", inline_max=10, url_ttl_seconds=60
    )
    assert large.url == f"https://s3.example/{key}?ttl=60" and large.body is None
    assert bucket.presigned == [(key, 'attachment; filename="leads.enriched.csv"')]


def test_expiry_is_counted_from_when_the_result_was_written() -> None:
    # A cancelled job's result is written after the cancel: its retention starts then
    job = finished(status=JobStatus.CANCELLED, completed_at="2030-01-01T00:00:00.000Z")
    expires = job_views.result_expires_at(job, 1)
    assert expires == (at(WRITTEN) + timedelta(days=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert datetime.now(UTC) < at(expires or "")
