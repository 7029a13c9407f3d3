"""The docs page in a real browser (headless Debian Chromium, Playwright) against `bulkapi serve`: under the console's
Content-Security-Policy it renders with no error, and "Try it out" creates a job with the fields as the page fills
them (the `column` field was once filled with "string", which no file has). Skipped where Chromium is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Server, new_account
from tests.e2e.test_console import browser  # noqa: F401  (the fixture)
from tests.helpers import email_csv

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_try_it_out_creates_a_job_from_the_docs_page(server: Server, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    # Given an account, a CSV, and the docs page open in a browser (recording errors and policy violations)
    account = new_account(server, 10_000)
    source = tmp_path / "leads.csv"
    source.write_bytes(email_csv(5))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    errors: list[str] = []
    # (the browser's own /favicon.ico request is the console's concern, not this page's)
    page.on(
        "console",
        lambda msg: (
            errors.append(f"{msg.text} {msg.location}")
            if msg.type == "error" and not str(msg.location.get("url", "")).endswith("/favicon.ico")
            else None
        ),
    )
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    failed: list[str] = []
    page.on("response", lambda resp: failed.append(f"{resp.status} {resp.url}") if resp.status >= 400 else None)
    page.goto(f"{server.base_url}/api/docs")
    # When the user authorizes with the key
    page.locator("button.authorize").first.click()
    page.locator(".auth-container input").first.fill(account.key)
    page.locator(".auth-btn-wrapper button.authorize").click()
    page.locator("button.btn-done").click()
    # And opens the job creation, asks to try it out and chooses the file, leaving every other field as filled
    operation = page.locator("#operations-jobs-create_job_api_bulk_jobs_post")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    column = operation.locator("tr[data-property-name='column'] input[type='text']")
    assert column.input_value() == ""  # not "string"
    operation.locator("input[type='file']").set_input_files(str(source))
    operation.locator("button.execute").click()
    # Then the API answers 202: the job is created
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    body = operation.locator(".live-responses-table .microlight").first.inner_text()
    assert status.inner_text().strip() == "202", body
    # And the page ran with no error (nothing refused by its Content-Security-Policy)
    assert errors == [] and failed == [], (errors, failed)
