"""Writes guarded without a read first: a worker's part file only where none is (S3's conditional write), a
splitter's claim only for the job whose file the object is."""

from __future__ import annotations

import secrets
from typing import Any

from functions.adapters.blobs import BlobStore
from functions.adapters.jobs import JobStore
from functions.handlers import splitter as splitter_handler
from local.lambdas import SPLITTER
from local.runtime import LocalRuntime
from tests.helpers import email_csv, wait_for


def test_a_part_is_written_where_none_is_and_an_existing_one_is_kept(runtime: LocalRuntime) -> None:
    # Given a part key with nothing under it (in the versioned bucket)
    blobs = BlobStore(runtime.bucket)
    key = f"parts/job_{secrets.token_hex(4)}/000000.csv"
    # When a part is written there only if new, twice
    first = blobs.put_new(key, b"counted\r\n")
    second = blobs.put_new(key, b"redelivered\r\n")
    # Then the first write took, the second was refused, and the object is the first one
    assert (first, second) == (True, False)
    assert blobs.get(key) == b"counted\r\n"


def test_the_splitter_claims_an_upload_only_for_its_job_and_deletes_one_without(
    runtime: LocalRuntime, api: Any
) -> None:
    # Given the splitter's own adapters, a completed job's upload, and an upload under a job id nobody created
    deps = splitter_handler.lambda_handler.deps(runtime.function_env(SPLITTER))
    created = api.post(
        f"{api.base}/api/bulk-jobs", files={"file": ("f.csv", email_csv(30))}, data={"type": "email"}, timeout=30
    ).json()
    wait_for(
        lambda: (
            api.get(f"{api.base}/api/bulk-jobs", params={"id": created["id"]}, timeout=30).json()["status"]
            == "completed"
        ),
        timeout=60,
        what="the job to complete",
    )
    job = JobStore(runtime.table).get_job(created["id"])
    assert job is not None
    orphan = f"uploads/{job.account_id}/job_{secrets.token_hex(8)}.csv"
    BlobStore(runtime.bucket).put(orphan, email_csv(5))
    # When S3 announces each object again (a duplicate event, a presigned form sent again)
    again = splitter_handler.handle_object(job.source_key, "", "", deps)
    without = splitter_handler.handle_object(orphan, "", "", deps)
    # Then the completed job is not split again and keeps its status, and the orphan upload is deleted
    assert (again, without) == ("skipped", "no_job")
    current = JobStore(runtime.table).get_job(job.id)
    assert current is not None and current.status == "completed"
    assert BlobStore(runtime.bucket).head(orphan) is None
