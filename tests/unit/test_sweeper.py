"""The sweeper's decisions: which unfinished jobs it ends, and how."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

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


def test_sweep_fails_stuck_jobs_and_finalizes_finished_ones() -> None:
    # Given a job never picked up, one whose batches are all counted, and one moving normally
    stuck = job(id="job_stuck", status=JobStatus.QUEUED, created_at=ago(hours=2))
    done = job(id="job_done", split_started_at=ago(hours=1), total_batches=2, batches_done=2)
    moving = job(id="job_moving", split_started_at=ago(minutes=1), created_at=ago(minutes=2))
    store, finalizer = Store([stuck, done, moving]), RecordingFinalizer()
    # When the sweeper runs
    outcome = sweep(store, finalizer, now=NOW, **LIMITS)
    # Then the stuck one fails with a code, both get a finalizer run (result, refund, event), the other is left
    assert outcome == {"finalized": ["job_done"], "failed": ["job_stuck"]}
    assert store.jobs["job_stuck"].error == "not_started" and store.jobs["job_moving"].status == "processing"
    assert sorted(finalizer.started) == ["job_done", "job_stuck"]
