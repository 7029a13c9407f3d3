"""A presigned upload that lands while the splitter is busy: the sweeper looks for the file before it fails the job."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import Server, new_account, start_server, status, stop_server, wait_ended
from tests.helpers import email_csv, wait_for

pytestmark = pytest.mark.e2e

UPLOAD_TTL_SECONDS = 3


@pytest.fixture(scope="module")
def hold(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """While this file exists, the local splitter waits (BULKAPI_LOCAL_HOLD_SPLITTER): a backlog on demand."""
    return tmp_path_factory.mktemp("hold") / "splitter-busy"


@pytest.fixture(scope="module")
def backlog_server(tmp_path_factory: pytest.TempPathFactory, hold: Path) -> Iterator[Server]:
    """Upload forms that expire after 3 s with no grace, and a sweeper that runs every 0.5 s."""
    srv = start_server(
        tmp_path_factory.mktemp("backlog"),
        BULKAPI_UPLOAD_URL_TTL_SECONDS=str(UPLOAD_TTL_SECONDS),
        BULKAPI_UPLOAD_GRACE_SECONDS="0",
        BULKAPI_LOCAL_SCHEDULE_SECONDS="0.5",
        BULKAPI_LOCAL_HOLD_SPLITTER=str(hold),
    )
    yield srv
    stop_server(srv)


def test_a_file_that_lands_during_a_splitter_backlog_is_processed_not_failed(
    backlog_server: Server, hold: Path
) -> None:
    # Given a busy splitter, and two presigned jobs: one whose file is sent before its form expires, one never used
    hold.touch()
    account = new_account(backlog_server, 10_000)
    session = backlog_server.session(account.key)

    def presigned(name: str) -> dict[str, object]:
        resp = session.post(
            f"{backlog_server.base_url}/api/bulk-jobs", json={"type": "email", "filename": name}, timeout=30
        )
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    landed, unused = presigned("landed.csv"), presigned("unused.csv")
    form = landed["upload"]
    assert isinstance(form, dict)
    sent = requests.post(form["url"], data=form["fields"], files={"file": ("landed.csv", email_csv(30))}, timeout=30)
    assert sent.status_code == 204, sent.text
    try:
        # When both forms have expired and the sweeper has run since (it fails the unused one)
        expired = wait_ended(session, backlog_server, str(unused["id"]), timeout=30, interval=0.2)
        assert (expired["status"], expired["error"]) == ("failed", "upload_expired")
        later = datetime.now(UTC) + timedelta(seconds=2)
        wait_for(lambda: datetime.now(UTC) > later, timeout=5, what="more sweeps")
        # Then the job whose file landed is still waiting for its split, not failed upload_expired as before
        waiting = status(session, backlog_server, str(landed["id"]))
        assert (waiting["status"], waiting["error"]) == ("awaiting_upload", None), waiting
    finally:
        # When the splitter gets to it
        hold.unlink(missing_ok=True)
    # Then the job is processed to the end
    final = wait_ended(session, backlog_server, str(landed["id"]), timeout=60)
    assert (final["status"], final["total_rows"], final["processed"]) == ("completed", 30, 30), final
    account.assert_balanced()
