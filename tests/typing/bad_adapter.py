"""Checked by mypy from tests/test_ports_typing.py (never imported, never collected): a jobs-table adapter that lacks
one method of the port it fills (`set_status` of SweepStorePort), handed to the sweeper's Deps. mypy must refuse it."""

from __future__ import annotations

from functions.handlers.sweeper import Deps
from functions.logic.ports import FinalizerPort, UploadedFilesPort
from functions.models import Job
from functions.settings import SweeperSettings


class StoreWithoutSetStatus:
    """Reads jobs and lists the active ones, but cannot move a job's status."""

    def get_job(self, job_id: str) -> Job | None:
        """No job."""
        return None

    def active_job_ids(self, created_before: str, limit: int = 500) -> list[str]:
        """No active job."""
        return []


def sweeper_deps(finalizer: FinalizerPort, files: UploadedFilesPort, settings: SweeperSettings) -> Deps:
    """The sweeper composed with the incomplete store: the line mypy must reject."""
    return Deps(store=StoreWithoutSetStatus(), finalizer=finalizer, files=files, settings=settings)
