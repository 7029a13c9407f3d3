"""What the CLI shows people and which names and ports it picks, without a server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from client.api import attachment_name
from client.cli import human, job_rate
from local import cli as local_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (True, "yes"),
        (False, "no"),
        (None, "-"),
        ("", "-"),
        (1234567, "1,234,567"),
        (12.5, "12.5"),
        (100.0, "100"),
        (["bulk_job.completed", "bulk_job.failed"], "bulk_job.completed, bulk_job.failed"),
        ({"valid": 3}, '{"valid": 3}'),
    ],
)
def test_values_are_shown_as_a_person_reads_them(value: object, shown: str) -> None:
    assert human(value) == shown


def test_the_rate_is_counted_from_the_jobs_own_start_to_its_end() -> None:
    # Given a job that processed 50,000 rows in 100 s and ended long ago
    job = {
        "status": "completed",
        "processed": 50_000,
        "started_at": "2026-01-01T10:00:00.000Z",
        "completed_at": "2026-01-01T10:01:40.000Z",
    }
    # Then its rate is 500 rows/s, not 50,000 rows per second of watching
    assert job_rate(job) == 500
    # And a job that has not started has no rate
    assert job_rate({"status": "queued", "processed": 0, "started_at": None}) is None


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ('attachment; filename="leads.enriched.ok.csv"', "leads.enriched.ok.csv"),
        ("attachment; filename=\"K.csv\"; filename*=UTF-8''K%C3%BCnden.enriched.csv", "Künden.enriched.csv"),
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename=".bashrc"', None),
        ("inline", None),
        ("", None),
    ],
)
def test_the_download_name_is_the_apis_and_stays_in_the_folder(header: str, name: str | None) -> None:
    assert attachment_name(httpx.Headers({"content-disposition": header})) == name


def test_admin_takes_the_port_of_bulkapi_url_then_the_running_serve(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given no BULKAPI_PORT, a BULKAPI_URL, and (in a cache of this test's own) one live serve on port 8311
    monkeypatch.delenv("BULKAPI_PORT", raising=False)
    monkeypatch.setattr(local_cli, "CACHE", tmp_path)
    (tmp_path / "local-runtime-8311.json").write_text(json.dumps({"pid": os.getpid()}))
    (tmp_path / "local-runtime-8312.json").write_text(json.dumps({"pid": 2**22 + 7}))  # no such process
    monkeypatch.setenv("BULKAPI_URL", "http://127.0.0.1:8290")
    # Then --port wins, then BULKAPI_URL's port
    assert local_cli.running_port(9000) == 9000
    assert local_cli.running_port(None) == 8290
    # And without BULKAPI_URL, the one serve that is running (the dead one's file is ignored)
    monkeypatch.delenv("BULKAPI_URL")
    assert local_cli.running_port(None) == 8311


@pytest.mark.slow  # three starts of the CLI
def test_the_shell_completes_commands_and_choices(tmp_path: Path) -> None:
    # Given the shell asking argcomplete (as `register-python-argcomplete bulkapi` sets it up) mid-word
    def complete(line: str) -> list[str]:
        out = tmp_path / "completions"
        env = {
            **os.environ,
            "_ARGCOMPLETE": "1",
            "COMP_LINE": line,
            "COMP_POINT": str(len(line)),
            "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
        }
        run = subprocess.run([sys.executable, "-m", "local.cli"], env=env, cwd=ROOT, timeout=60, check=False)
        assert run.returncode == 0
        return out.read_text().split()

    # Then subcommands and option values are completed
    assert complete("bulkapi webhooks re") == ["remove"]
    assert complete("bulkapi jobs download job_1 --delimiter p") == ["pipe"]
    assert set(complete("bulkapi jobs w")) == {"wait"}
