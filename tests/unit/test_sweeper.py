"""The sweeper's decisions: which unfinished jobs it ends, and how."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.errors import StoreError
from functions.logic.sweeper import decide, sweep
from functions.models import Job, JobStatus
from tests.fakes import JobsInMemory, RecordingFinalizer

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LIMITS = {
    "start_after": timedelta(minutes=15),
    "split_lease": timedelta(minutes=15),
    "stalled_after": timedelta(hours=6),
}


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job(**fields: object) -> Job:
    base: dict[str, object] = {
        "id": "job_x",
        "account_id": "a",
        "type": "email",
        "status": JobStatus.PROCESSING,
        "source_key": "k",
        "created_at": ago(hours=1),
    }
    return Job.model_validate({**base, **fields})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": JobStatus.QUEUED, "created_at": ago(minutes=20)}, ("fail", "not_started")),
        ({"status": JobStatus.QUEUED, "created_at": ago(minutes=5)}, None),
        ({"split_started_at": ago(minutes=20)}, ("fail", "split_failed")),
        ({"split_started_at": ago(minutes=2)}, None),
        (
            {"split_started_at": ago(hours=1), "total_batches": 3, "batches_done": 3},
            ("finalize", "all batches counted"),
        ),
        (
            {
                "split_started_at": ago(hours=7),
                "total_batches": 3,
                "batches_done": 1,
                "last_progress_at": ago(hours=6.5),
            },
            ("fail", "stalled"),
        ),
        (
            {
                "split_started_at": ago(hours=7),
                "total_batches": 3,
                "batches_done": 1,
                "last_progress_at": ago(minutes=3),
            },
            None,
        ),
        ({"status": JobStatus.COMPLETED}, None),
    ],
)
def test_decisions(fields: dict[str, object], expected: tuple[str, str] | None) -> None:
    assert decide(job(**fields), NOW, **LIMITS) == expected


class Store(JobsInMemory):
    def active_job_ids(self, created_before: str, limit: int = 500) -> list[str]:
        return [j.id for j in self.jobs.values() if not j.status.is_terminal and j.created_at < created_before]


class Files:
    """The bucket's uploads: key -> when the file landed."""

    def __init__(self, landed: dict[str, datetime] | None = None) -> None:
        self.landed = landed or {}
        self.broken: set[str] = set()
        self.asked: list[str] = []

    def head(self, key: str) -> dict[str, Any] | None:
        self.asked.append(key)
        if key in self.broken:
            raise StoreError(f"could not read {key}")
        return {"LastModified": self.landed[key], "ContentLength": 10} if key in self.landed else None


def test_an_expired_upload_fails_only_when_its_file_is_really_absent() -> None:
    # Given three presigned jobs whose forms expired 10 minutes ago (the grace is 5): one whose file never came, one
    # whose file landed 7 s before the form expired while the splitter was busy, and one whose file landed long ago
    # but was never picked up
    expired = {"status": JobStatus.AWAITING_UPLOAD, "upload_expires_at": ago(minutes=10), "created_at": ago(hours=2)}
    absent = job(id="job_absent", source_key="uploads/a/job_absent.csv", **expired)
    landed = job(id="job_landed", source_key="uploads/a/job_landed.csv", **expired)
    lost = job(id="job_lost", source_key="uploads/a/job_lost.csv", **expired)
    files = Files(
        {
            "uploads/a/job_landed.csv": NOW - timedelta(minutes=10, seconds=7),
            "uploads/a/job_lost.csv": NOW - timedelta(minutes=40),
        }
    )
    store, finalizer = Store([absent, landed, lost]), RecordingFinalizer()
    # When the sweeper runs
    outcome = sweep(store, finalizer, files=files, now=NOW, upload_grace=timedelta(minutes=5), **LIMITS)
    # Then it looked for each file, and failed upload_expired only the job whose file is absent
    assert sorted(files.asked) == sorted(j.source_key for j in (absent, landed, lost))
    assert store.jobs["job_absent"].error == "upload_expired"
    # And the file that landed is left to its split (it was failed upload_expired before)
    assert store.jobs["job_landed"].status == JobStatus.AWAITING_UPLOAD and "job_landed" not in outcome["failed"]
    # And a file that landed but was never picked up within start_after fails as any unstarted file does
    assert store.jobs["job_lost"].error == "not_started"
    assert sorted(finalizer.started) == ["job_absent", "job_lost"]


def test_an_upload_the_sweeper_cannot_look_for_is_not_failed_and_does_not_stop_the_sweep() -> None:
    # Given two expired forms; S3 does not answer the HEAD of the first (throttled, or a 403)
    expired = {"status": JobStatus.AWAITING_UPLOAD, "upload_expires_at": ago(minutes=10), "created_at": ago(hours=2)}
    unknown = job(id="job_unknown", source_key="uploads/a/job_unknown.csv", **expired)
    absent = job(id="job_absent", source_key="uploads/a/job_absent.csv", **expired)
    files = Files()
    files.broken.add(unknown.source_key)
    store = Store([unknown, absent])
    # When the sweeper runs
    outcome = sweep(store, RecordingFinalizer(), files=files, now=NOW, **LIMITS)
    # Then the job it could not check waits for the next sweep, and the other is failed as usual
    assert outcome["failed"] == ["job_absent"] and store.jobs["job_unknown"].status == JobStatus.AWAITING_UPLOAD


def test_sweep_fails_stuck_jobs_and_finalizes_finished_ones() -> None:
    # Given a job never picked up, one whose batches are all counted, and one moving normally
    stuck = job(id="job_stuck", status=JobStatus.QUEUED, created_at=ago(hours=2))
    done = job(id="job_done", split_started_at=ago(hours=1), total_batches=2, batches_done=2)
    moving = job(id="job_moving", split_started_at=ago(minutes=1), created_at=ago(minutes=2))
    store, finalizer = Store([stuck, done, moving]), RecordingFinalizer()
    # When the sweeper runs
    outcome = sweep(store, finalizer, files=Files(), now=NOW, **LIMITS)
    # Then the stuck one fails with a code, both get a finalizer run (result, refund, event), the other is left
    assert outcome == {"finalized": ["job_done"], "failed": ["job_stuck"]}
    assert store.jobs["job_stuck"].error == "not_started" and store.jobs["job_moving"].status == "processing"
    assert sorted(finalizer.started) == ["job_done", "job_stuck"]
