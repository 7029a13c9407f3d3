"""In-memory stand-ins for the ports that logic tests share."""

from __future__ import annotations

from functions.models import Job, JobStatus


class JobsInMemory:
    """Jobs by id, with the guarded status move every store port has (StatusPort)."""

    def __init__(self, jobs: list[Job] | None = None) -> None:
        self.jobs: dict[str, Job] = {j.id: j for j in jobs or []}

    def get_job(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def set_status(
        self,
        job_id: str,
        status: JobStatus,
        *,
        only_from: tuple[str, ...],
        now: str,
        error: str | None = None,
        error_message: str | None = None,
    ) -> Job | None:
        job = self.jobs[job_id]
        if job.status.value not in only_from:
            return None
        job.status, job.error = status, error
        if status.is_terminal:
            job.completed_at = job.completed_at or now
        return job


class RecordingFinalizer:
    """Remembers which jobs it was asked to finalize."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, job_id: str) -> bool:
        self.started.append(job_id)
        return True
