"""In-memory stand-ins for the ports that logic tests share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from functions.enrich._common import ProviderFailure
from functions.enrich.facts import DarkwebResult
from functions.models import Job, JobStatus
from functions.providers import hibp


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
        job = self.jobs.get(job_id)
        if job is None or job.status.value not in only_from:  # DynamoDB's condition fails on a missing item too
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


class MemoryCache:
    """The answer cache (CachePort) in a dict; `broken` makes every call raise like an unreachable table."""

    def __init__(self, broken: bool = False) -> None:
        self.entries: dict[str, str] = {}
        self.ttls: list[int] = []
        self.broken = broken

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        if self.broken:
            raise ConnectionError("table unreachable")
        return {k: self.entries[k] for k in keys if k in self.entries}

    def put_many(self, entries: Mapping[str, str], ttl_seconds: int) -> None:
        if self.broken:
            raise ConnectionError("table unreachable")
        self.entries.update(entries)
        self.ttls.append(ttl_seconds)


class CleanBreaches:
    """An HIBP provider double that knows no breaches and remembers every address it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def lookup_many(self, queries: Sequence[str]) -> list[DarkwebResult | ProviderFailure]:
        self.asked += queries
        return [hibp.summarize(q, []) for q in queries]
