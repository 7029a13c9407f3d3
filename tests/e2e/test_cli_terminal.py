"""The customer commands on a terminal (a pseudo-terminal, as a person's shell gives them): tables instead of JSON,
Ctrl-C while watching a job, and the exit codes and messages people and scripts act on."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import ROOT, Server, free_port, new_account, post_job, status
from tests.helpers import email_csv, wait_for

pytestmark = pytest.mark.e2e


class Terminal:
    """`bulkapi ARGS` in a pseudo-terminal of 160 columns: what a person would see, and keys they would press."""

    def __init__(self, server: Server, key: str, *args: str) -> None:
        env = {**os.environ, "BULKAPI_URL": server.base_url, "BULKAPI_KEY": key, "COLUMNS": "160", "TERM": "xterm"}
        env.pop("NO_COLOR", None)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the CLI, with the terminal as stdin, stdout and stderr
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, "-m", "local.cli", *args], env)
        self.output = ""

    @property
    def text(self) -> str:
        """What the terminal shows, without its colour and cursor escape sequences."""
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.output)

    def read_until(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """Read the screen until `pattern` appears."""
        deadline = time.monotonic() + timeout
        while (found := re.search(pattern, self.text)) is None:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"no {pattern!r} on the terminal; it shows:\n{self.output}")
        return found

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # the child ended and closed the terminal
            return False
        self.output += chunk.decode("utf-8", "replace")
        return bool(chunk)

    def exit_code(self, timeout: float = 60.0) -> int:
        """Wait for the command to end (reading what it still prints); its exit code, 128+N for a signal."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read(0.2)
            pid, code = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while self._read(0.05) and select.select([self.fd], [], [], 0)[0]:
                    pass
                os.close(self.fd)
                return os.waitstatus_to_exitcode(code) if code & 0x7F == 0 else 128 + (code & 0x7F)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"the command did not end; the terminal shows:\n{self.output}")


def test_a_job_list_and_a_status_are_tables_on_a_terminal(server: Server) -> None:
    # Given an account with a finished job
    account = new_account(server, 5000)
    session = server.session(account.key)
    job_id = post_job(session, server, email_csv(1_200)).json()["id"]
    wait_for(lambda: status(session, server, job_id)["status"] == "completed", timeout=60, what="the job to end")
    # When its jobs are listed on a terminal
    term = Terminal(server, account.key, "jobs", "list")
    assert term.exit_code() == 0, term.output
    # Then they are one table with a header row, one line per job, numbers with thousands separators
    screen = term.text
    assert re.search(r"id\s*┃\s*status\s*┃", screen), screen
    (row,) = [line for line in screen.splitlines() if job_id in line]
    assert "completed" in row and "1,200" in row, row
    assert not screen.lstrip().startswith("{"), screen
    # When one job's status is shown
    term = Terminal(server, account.key, "jobs", "status", job_id)
    assert term.exit_code() == 0, term.output
    # Then it is field / value lines a person reads: yes/no and `-`, never Python's True/False/None
    screen = term.text
    assert re.search(r"^\s*status\s+completed\s*$", screen, re.MULTILINE), screen
    assert re.search(r"^\s*result_ready\s+yes\s*$", screen, re.MULTILINE), screen
    assert not re.search(r"\b(True|False|None)\b", screen), screen
    # When the sample file is previewed on a terminal
    term = Terminal(server, account.key, "jobs", "preview", str(ROOT / "examples" / "leads.csv"), "--type", "email")
    assert term.exit_code() == 0, term.output
    # Then its rows are a table: the file's columns, then the verdict beside each address, not JSON
    screen = term.text
    assert re.search(r"first_name\s*┃.*email\s*┃\s*validity\s*┃\s*reason", screen), screen
    assert re.search(r"│ Ada\s*│.*ada\.lovelace@", screen), screen
    assert "credits_required" in screen and '"cells"' not in screen


@pytest.mark.slow
def test_ctrl_c_while_waiting_leaves_the_job_running_and_says_how_to_reattach(
    slow_server: Server, tmp_path: Path
) -> None:
    # Given a job that takes a while (batches of 25 rows, one worker), watched from a terminal with --wait
    account = new_account(slow_server, 100_000)
    source = tmp_path / "many.csv"
    source.write_bytes(email_csv(10_000))
    term = Terminal(slow_server, account.key, "jobs", "create", str(source), "--type", "email", "--wait")
    job_id = term.read_until(r"job (job_\w+) created").group(1)
    term.read_until(r"processing")
    # When the user presses Ctrl-C
    os.write(term.fd, b"\x03")
    # Then the command exits 130, saying the job goes on and how to re-attach, without a traceback
    assert term.exit_code() == 130, term.output
    assert f"job {job_id} goes on on the server" in term.text
    assert f"Re-attach with: bulkapi jobs wait {job_id}" in term.text
    assert "Traceback" not in term.text
    # And the job is still running on the server: it goes on processing rows
    session = slow_server.session(account.key)
    before = status(session, slow_server, job_id)
    assert before["status"] in ("queued", "processing"), before
    wait_for(
        lambda: status(session, slow_server, job_id)["processed"] > before["processed"],
        timeout=60,
        what="the job to go on",
    )
    # When the user re-attaches with `jobs wait` (from a script: JSON) and stops it from another terminal
    watch = subprocess.Popen(
        [sys.executable, "-m", "local.cli", "jobs", "wait", job_id, "--no-progress"],
        cwd=ROOT,
        env={**os.environ, "BULKAPI_URL": slow_server.base_url, "BULKAPI_KEY": account.key},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    cancelled = session.delete(f"{slow_server.base_url}/api/bulk-jobs", params={"id": job_id}, timeout=30)
    assert cancelled.status_code == 200, cancelled.text
    out, err = watch.communicate(timeout=120)
    # Then the watch ends with the job, its exit code saying it was cancelled (7), the final status as JSON
    assert watch.returncode == 7, err
    assert json.loads(out.splitlines()[-1])["status"] == "cancelled"
    assert "ETA" not in err.split("cancelled", 1)[-1]


def cli(server: Server, key: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local.cli", *args],
        cwd=ROOT,
        env={**os.environ, "BULKAPI_URL": server.base_url, "BULKAPI_KEY": key, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_webhook_commands_and_their_exit_codes(server: Server) -> None:
    # Given an endpoint at an address where nothing listens
    account = new_account(server, 100)
    dead = f"http://127.0.0.1:{free_port()}/hook"
    added = cli(server, account.key, "webhooks", "add", dead, "--description", "crm")
    assert added.returncode == 0, added.stderr
    hook_id = json.loads(added.stdout)["id"]
    # When it is tested
    tested = cli(server, account.key, "webhooks", "test", hook_id)
    # Then the command fails (8), saying why, and the answer is still printed
    assert tested.returncode == 8, tested.stderr
    assert "webhook_not_delivered" in tested.stderr and json.loads(tested.stdout)["success"] is False
    # When it is updated (paused, described)
    updated = cli(server, account.key, "webhooks", "update", hook_id, "--disable", "--description", "paused")
    assert updated.returncode == 0, updated.stderr
    assert (json.loads(updated.stdout)["is_active"], json.loads(updated.stdout)["description"]) == (False, "paused")
    # And an update with nothing to change is an input error
    assert cli(server, account.key, "webhooks", "update", hook_id).returncode == 2
    # When it is removed
    removed = cli(server, account.key, "webhooks", "remove", hook_id)
    assert removed.returncode == 0, removed.stderr
    # Then it is gone
    assert json.loads(cli(server, account.key, "webhooks", "list").stdout or "null") is None


def test_download_without_out_takes_the_name_the_api_gives(server: Server, tmp_path: Path) -> None:
    # Given a finished job from leads.csv
    account = new_account(server, 1000)
    session = server.session(account.key)
    job_id = post_job(session, server, email_csv(50, bad_every=10), filename="leads.csv").json()["id"]
    wait_for(lambda: status(session, server, job_id)["status"] == "completed", timeout=60, what="the job to end")
    # When its invalid rows are downloaded, pipe-delimited, with no --out, in an empty folder
    run = subprocess.run(
        [sys.executable, "-m", "local.cli", "jobs", "download", job_id, "--status", "invalid", "--delimiter", "pipe"],
        cwd=tmp_path,
        env={**os.environ, "BULKAPI_URL": server.base_url, "BULKAPI_KEY": account.key, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then the file has the API's name for that segment, and its rows are separated by pipes
    assert run.returncode == 0, run.stderr
    (written,) = tmp_path.iterdir()
    assert written.name.startswith("leads.enriched.") and written.name.endswith(".csv"), written.name
    assert "invalid" in written.name and "|" in written.read_text().splitlines()[0]


def test_admin_finds_the_server_from_bulkapi_url_and_names_the_port_it_tried(server: Server) -> None:
    # Given the customer's BULKAPI_URL of a running serve, and no --port
    env = {k: v for k, v in os.environ.items() if k != "BULKAPI_PORT"}
    listed = subprocess.run(
        [sys.executable, "-m", "local.cli", "admin", "list-accounts"],
        cwd=ROOT,
        env={**env, "BULKAPI_URL": server.base_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Then admin manages that server
    assert listed.returncode == 0, listed.stderr
    assert "acct_dev" in listed.stdout
    # When BULKAPI_URL names a port where no serve runs
    port = free_port()
    missing = subprocess.run(
        [sys.executable, "-m", "local.cli", "admin", "list-accounts"],
        cwd=ROOT,
        env={**env, "BULKAPI_URL": f"http://127.0.0.1:{port}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Then it says which port it tried and how to name another
    assert missing.returncode != 0
    assert f"no bulkapi serve is running on port {port}" in missing.stderr and "--port" in missing.stderr
    assert urlsplit(server.base_url).port != port


def test_version_is_printed() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "local.cli", "--version"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0 and re.fullmatch(r"bulkapi \d+\.\d+\.\d+\S*\n", run.stdout), run
