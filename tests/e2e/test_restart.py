"""What a restart of `bulkapi serve` keeps: nothing, and it says so when it starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import post_job, start_server, stop_server
from tests.helpers import email_csv

pytestmark = pytest.mark.e2e


def test_a_restart_starts_empty_and_the_start_up_message_says_so(tmp_path: Path) -> None:
    # Given a server with a job, told at start-up that its state is in memory only
    first = start_server(tmp_path, BULKAPI_DEV_TOKEN="restart-key")
    try:
        assert first.log_path is not None
        banner = first.log_path.read_text()
        assert "in memory only" in banner and "loses every job" in banner
        job_id = post_job(first.session(), first, email_csv(10)).json()["id"]
    finally:
        stop_server(first)

    # When it is started again with the same dev key
    second = start_server(tmp_path, BULKAPI_DEV_TOKEN="restart-key")
    try:
        # Then the key works again (it is the configured one), and the job is gone, as the message said
        resp = second.session().get(f"{second.base_url}/api/bulk-jobs", params={"id": job_id}, timeout=30)
        assert resp.status_code == 404 and resp.json()["error"] == "job_not_found"
    finally:
        stop_server(second)
