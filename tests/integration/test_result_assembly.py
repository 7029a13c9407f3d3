"""The result is an S3 multipart upload built from the part files (moto's S3): large parts copied by S3 itself, small
ones streamed, the order kept; part files deleted once the job has ended."""

from __future__ import annotations

import secrets
from typing import Any

from functions.adapters.blobs import MIN_PART_SIZE, BlobStore
from functions.adapters.jobs import JobStore
from functions.logic import finalize
from functions.logic.processing import part_key
from local.runtime import LocalRuntime
from tests.helpers import email_csv, parse_result, wait_for


def test_parts_of_5_mib_and_more_are_copied_by_s3_and_the_rest_streamed_in_order(runtime: LocalRuntime) -> None:
    # Given part files of mixed sizes, some big enough to be multipart parts of their own
    blobs = BlobStore(runtime.bucket)
    prefix = f"parts/job_{secrets.token_hex(4)}/"
    mib = 1024 * 1024
    sizes = [1_000, 11 * mib, 100_000, 12 * mib + 3, MIN_PART_SIZE, 10, 10 * mib + 1, 6 * mib]
    bodies = [bytes([65 + i]) * size for i, size in enumerate(sizes)]
    for i, body in enumerate(bodies):
        blobs.put(f"{prefix}{i:06d}.csv", body)
    # When a result is written as a header followed by those objects, in order
    writer = blobs.writer(f"results/test/{prefix.split('/')[1]}.csv")
    writer.write(b"header\r\n")
    seen: list[tuple[str, int | None]] = []
    writer.append_objects(
        (f"{prefix}{i:06d}.csv" for i in range(len(bodies))),
        lambda key, data: seen.append((key, None if data is None else len(data))),
    )
    writer.close()
    # Then the result is exactly the concatenation
    result = blobs.get(f"results/test/{prefix.split('/')[1]}.csv")
    assert result == b"header\r\n" + b"".join(bodies)
    # And the large parts were copied by S3, not streamed: whole when they start a part (5 MiB and 6 MiB right after
    # a copy), else what is left of them once the bytes before them were topped up to a whole part
    assert writer.copied_parts == 5
    # And the observer (the finalizer's summary count) saw every object in order: the bytes of those streamed, None
    # for those S3 copied from the first byte on (it reads those itself)
    assert [key for key, _ in seen] == [f"{prefix}{i:06d}.csv" for i in range(len(bodies))]
    assert [n for _, n in seen] == [size if size < MIN_PART_SIZE else None for size in sizes]
    # And deleting the prefix removes every part file
    assert blobs.purge(prefix) == len(bodies)
    assert runtime.client("s3").list_objects_v2(Bucket=runtime.bucket, Prefix=prefix).get("KeyCount") == 0


def _job_status(api: Any, job_id: str) -> dict[str, Any]:
    return dict(api.get(f"{api.base}/api/bulk-jobs", params={"id": job_id}, timeout=30).json())


def test_a_completed_job_leaves_no_part_files_and_assembling_again_keeps_the_result(
    api: Any, store: JobStore, runtime: LocalRuntime
) -> None:
    # Given a job of several batches (100 rows a batch in this runtime) that completed
    created = api.post(
        f"{api.base}/api/bulk-jobs", files={"file": ("f.csv", email_csv(450))}, data={"type": "email"}, timeout=30
    ).json()
    wait_for(lambda: _job_status(api, created["id"])["status"] == "completed", what="completion")
    job = store.get_job(created["id"])
    assert job is not None and job.result_key and len(job.done_batches) == 5
    # Then its part files are gone right after (the Complete step deletes them once it has published the end)
    s3 = runtime.client("s3")
    wait_for(
        lambda: s3.list_objects_v2(Bucket=runtime.bucket, Prefix=f"parts/{job.id}/")["KeyCount"] == 0,
        timeout=10,
        what="the part files to be deleted",
    )
    # And the result holds every row
    blobs = BlobStore(runtime.bucket)
    before = blobs.get(job.result_key)
    assert [r["Row"] for r in parse_result(before)] == [str(i) for i in range(450)]
    # And a retried Assemble step (the parts are gone by now) keeps the result as it is
    again = finalize.assemble_result(job.id, store=store, blobs=blobs)
    assert again["result_key"] == job.result_key and blobs.get(job.result_key) == before


def test_a_part_key_names_its_batch_in_order() -> None:
    assert part_key("job_x", 7) < part_key("job_x", 10) == "parts/job_x/000010.csv"


def test_in_a_versioned_bucket_every_version_of_the_part_files_is_deleted(runtime: LocalRuntime) -> None:
    # Given a versioned bucket (as the stack's is) with part files written twice (a retried batch), and another job's
    s3 = runtime.client("s3")
    bucket = f"versioned-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for n in range(3):
        for attempt in range(2):
            s3.put_object(Bucket=bucket, Key=part_key("job_a", n), Body=b"row %d try %d" % (n, attempt))
    s3.put_object(Bucket=bucket, Key=part_key("job_b", 0), Body=b"other job")
    blobs = BlobStore(bucket)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    # When job_a's parts are deleted
    assert blobs.purge("parts/job_a/") == 6
    # Then no version of them is left (nothing waits for the noncurrent-version lifecycle), and job_b's part stays
    assert "Versions" not in s3.list_object_versions(Bucket=bucket, Prefix="parts/job_a/")
    assert blobs.get(part_key("job_b", 0)) == b"other job"
