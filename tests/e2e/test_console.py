"""The web console in a real browser: headless Debian Chromium, driven by Playwright, against `bulkapi serve`.

A user's journey: enter the key, drop a CSV, preview it, start the job, watch the progress reach 100%, download the
result, and check the file's rows. Screenshots of each step go to test-artifacts/console/. Skipped (with the reason)
where Chromium is not installed; `.ci/run` installs Debian's `chromium`.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, Server, free_port, new_account
from tests.helpers import email_csv, parse_result

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "test-artifacts" / "console"
# The flags this machine's closed network needs (no background connections), as root (no sandbox).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (`apt-get install chromium`; .ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield instance
        instance.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_upload_preview_start_watch_and_download_in_the_browser(server: Server, browser: Any, tmp_path: Path) -> None:
    # Given an account and a 400-row CSV with some invalid addresses
    account = new_account(server, 10_000)
    source = tmp_path / "leads.csv"
    source.write_bytes(email_csv(400, bad_every=40))
    context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    # When the user opens the console and enters the key
    page.goto(f"{server.base_url}/console")
    page.get_by_label("API key", exact=True).fill(account.key)
    shot(page, "1-key")
    page.get_by_role("button", name="Continue").click()
    # And chooses the file and asks for a preview
    page.get_by_label("File (CSV").set_input_files(str(source))
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#preview")
    preview.wait_for(state="visible")
    shot(page, "2-preview")
    # Then the preview names the column, the rows and the credits, and shows enriched sample rows
    facts = page.locator("#preview-facts").inner_text()
    assert "Email" in facts and "400" in facts
    assert page.locator("#preview-rows tbody tr").count() == 10
    # And the verdict and its reason come right after the file's own columns
    headers = page.locator("#preview-rows thead th").all_inner_texts()
    assert headers[3:5] == ["validity", "reason"], headers
    # And at 200% zoom (half the CSS width) nothing but the sample table needs a sideways scroll
    page.set_viewport_size({"width": 550, "height": 900})
    shot(page, "2b-preview-200-percent")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.set_viewport_size({"width": 1100, "height": 900})
    # When the job is started and watched
    page.get_by_role("button", name="Start the job").click()
    from playwright.sync_api import expect

    expect(page.locator("#job-line")).to_have_text(re.compile(r"^completed"), timeout=60_000)
    shot(page, "3-completed")
    # Then the bar is full and the counters add up
    assert page.locator("#job-bar").get_attribute("value") == "100"
    assert "100.0%" in page.locator("#job-line").inner_text()
    # And the summary shows the verdicts as a bar with a legend that adds up to the rows
    summary = page.locator("#job-summary")
    expect(summary.get_by_role("img")).to_have_attribute("aria-label", re.compile(r"^Verdicts: valid 390 \(97.5%\)"))
    legend = summary.locator(".legend").inner_text()
    assert "valid: 390 (97.5%)" in legend and "invalid: 10 (2.5%)" in legend and "risky: 0" in legend
    # When the invalid segment is downloaded
    with page.expect_download() as segment:
        page.get_by_role("button", name="Download invalid (10)").click()
    assert segment.value.suggested_filename == "leads.enriched.invalid.csv"
    segment_file = tmp_path / "invalid.csv"
    segment.value.save_as(str(segment_file))
    # Then it holds those 10 rows only
    assert [r["validity"] for r in parse_result(segment_file.read_bytes())] == ["invalid"] * 10
    # When the full result is downloaded
    with page.expect_download() as download:
        page.get_by_role("button", name="Download all rows (CSV)").click()
    target = tmp_path / "result.csv"
    download.value.save_as(str(target))
    # Then it has every row of the file, in order, each with its row status
    rows = parse_result(target.read_bytes())
    sent = list(csv.DictReader(io.StringIO(source.read_text(), newline="")))
    assert [r["Email"] for r in rows] == [r["Email"] for r in sent]
    assert sum(r["status"] == "invalid" for r in rows) == 10
    # And the ledger is one click away
    page.get_by_role("button", name="Credits").click()
    page.locator("#ledger tbody tr").first.wait_for()
    shot(page, "4-credits")
    assert "reserve" in page.locator("#ledger").inner_text()
    context.close()


def test_an_api_error_is_shown_with_its_message_not_a_blank_page(server: Server, browser: Any, tmp_path: Path) -> None:
    # Given a user with a valid key and an empty file
    account = new_account(server, 10)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    page = browser.new_page()
    page.goto(f"{server.base_url}/console")
    page.get_by_label("API key", exact=True).fill(account.key)
    page.get_by_role("button", name="Continue").click()
    # When the empty file is previewed
    page.get_by_label("File (CSV").set_input_files(str(empty))
    page.get_by_role("button", name="Preview").click()
    # Then the API's message and code are shown
    alert = page.get_by_role("alert")
    alert.wait_for(state="visible")
    shot(page, "5-error")
    assert "(empty_file)" in alert.inner_text()
    # And a wrong key is refused on the key screen
    page.get_by_role("button", name="Forget key").click()
    page.get_by_label("API key", exact=True).fill("enc_test_wrong")
    page.get_by_role("button", name="Continue").click()
    assert "(unauthorized)" in page.get_by_role("alert").inner_text()
    page.close()


def test_an_ended_job_is_deleted_only_after_the_user_confirms_and_the_ledger_adds_up(
    server: Server, browser: Any, tmp_path: Path
) -> None:
    # Given an account whose small job has completed
    account = new_account(server, 1_000)
    session = server.session(account.key)
    created = session.post(
        f"{server.base_url}/api/bulk-jobs",
        files={"file": ("leads.csv", email_csv(12), "text/csv")},
        data={"type": "email"},
        timeout=60,
    )
    job_id = created.json()["id"]
    from playwright.sync_api import expect

    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{server.base_url}/console")
    page.get_by_label("API key", exact=True).fill(account.key)
    page.get_by_role("button", name="Continue").click()
    page.locator("#view-upload").wait_for(state="visible")
    page.get_by_role("button", name="Jobs").click()
    page.get_by_role("link", name=f"Open job {job_id}").click()
    expect(page.locator("#job-line")).to_have_text(re.compile(r"^completed"), timeout=60_000)
    # When the user presses Delete and then says no
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Delete the job").click()
    # Then they were asked, and the job is still there
    expect(page.locator("#job-line")).to_have_text(re.compile(r"^completed"))
    assert asked and "cannot be undone" in asked[0]
    assert session.get(f"{server.base_url}/api/bulk-jobs", params={"id": job_id}, timeout=30).status_code == 200
    # When they press it again and confirm (once the job's credits are settled)
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete the job").click()
    # Then the job is purged and the console shows the job list
    page.locator("#view-jobs").wait_for(state="visible")
    shot(page, "6-deleted")
    assert session.get(f"{server.base_url}/api/bulk-jobs", params={"id": job_id}, timeout=30).status_code == 404
    # And the Credits tab shows every ledger entry, which add up to the balance
    page.get_by_role("button", name="Credits").click()
    expect(page.locator("#ledger-count")).to_have_text(re.compile(r"^All \d+ entries shown"))
    text = page.locator("#ledger-count").inner_text()
    assert f"add up to {account.balance:,} credits" in text and f"All {len(account.entries())} entries" in text
    page.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_6_mb_file_is_previewed_from_its_head_and_started_through_the_presigned_form(
    server: Server, browser: Any, tmp_path: Path
) -> None:
    # Given a 6 MB CSV (over the 4 MiB a form carries) of 80,000 rows
    account = new_account(server, 100_000)
    source = tmp_path / "big.csv"
    note = b"called twice, wants the enterprise plan, EMEA"
    source.write_bytes(
        b"email,name,note\r\n" + b"".join(b"user%06d@example.com,P%06d,%s\r\n" % (i, i, note) for i in range(80_000))
    )
    assert source.stat().st_size > 6_000_000
    page = browser.new_page()
    page.set_default_timeout(30_000)
    failed: list[str] = []
    # (the page's /favicon.ico answers 401 today: issue 23, the console's own part)
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 and "favicon" not in r.url else None)
    page.goto(f"{server.base_url}/console")
    page.get_by_label("API key", exact=True).fill(account.key)
    page.get_by_role("button", name="Continue").click()
    # When it is previewed: the page sends its first MiB, and says the rows are about 80,000
    page.get_by_label("File (CSV").set_input_files(str(source))
    page.get_by_role("button", name="Preview").click()
    page.locator("#preview").wait_for(state="visible")
    facts = page.locator("#preview-facts").inner_text()
    assert re.search(r"about (79|80)\d{3}\b", facts), facts
    assert page.locator("#preview-rows tbody tr").count() == 10
    # And started: the whole file goes through the presigned form, and the job completes with every row
    page.get_by_role("button", name="Start the job").click()
    from playwright.sync_api import expect

    expect(page.locator("#job-line")).to_have_text(re.compile(r"^completed"), timeout=450_000)
    assert any(e["kind"] == "reserve" and int(e["amount"]) == -80_000 for e in account.entries())
    # And the result downloads as a workbook (built on first ask) with every row
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="All rows (Excel)").click()
    target = tmp_path / "result.xlsx"
    download.value.save_as(str(target))
    import openpyxl

    sheet = openpyxl.load_workbook(target, read_only=True).worksheets[0]
    first = list(itertools.islice(sheet.iter_rows(values_only=True), 2))
    assert first[0][:2] == ("email", "name") and first[1][:2] == ("user000000@example.com", "P000000")
    assert sheet.max_row == 80_001
    assert failed == []
    page.close()


DOCS = ROOT / "docs" / "console"
WIDTHS = {"desktop": 1280, "phone": 375}


def views_at_both_widths(page: Any, name: str) -> None:
    """Screenshots of the view on screen, at 1280 px and 375 px, kept under docs/console/ (README shows them)."""
    DOCS.mkdir(parents=True, exist_ok=True)
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(DOCS / f"{name}-{width}.png"), full_page=True)
        # Nothing but the tables' own scroll areas may make the page scroll sideways, at either width
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), (name, label)
    page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})


@pytest.mark.slow
def test_each_view_has_a_url_webhooks_are_managed_and_no_page_logs_an_error(server: Server, browser: Any) -> None:
    from playwright.sync_api import expect

    # Given an account, a browser that records every console error and failed request of the page
    account = new_account(server, 10_000)
    context = browser.new_context(accept_downloads=True, viewport={"width": WIDTHS["desktop"], "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    # (A download ends its request as "aborted" once the browser hands it to the download manager: not a failure.)
    page.on(
        "requestfailed",
        lambda request: None if request.failure == "net::ERR_ABORTED" else problems.append(f"{request.url}: failed"),
    )
    page.on("response", lambda answer: answer.status >= 400 and problems.append(f"{answer.url}: {answer.status}"))
    # When the user opens the service's root URL
    page.goto(server.base_url + "/")
    # Then it is the console, asking for a key
    assert page.url == f"{server.base_url}/console"
    page.get_by_label("API key", exact=True).wait_for()
    views_at_both_widths(page, "1-key")
    page.get_by_label("API key", exact=True).fill(account.key)
    page.get_by_role("button", name="Continue").click()
    # When the sample file that ships with the project is previewed and started
    page.get_by_label("File (CSV").set_input_files(str(ROOT / "examples" / "leads.csv"))
    page.get_by_role("button", name="Preview").click()
    page.locator("#preview").wait_for(state="visible")
    views_at_both_widths(page, "2-new-job")
    page.get_by_role("button", name="Start the job").click()
    expect(page.locator("#job-line")).to_have_text(re.compile(r"^completed"), timeout=60_000)
    # Then the job has a URL of its own, its rate is the job's own and an ended job shows no ETA
    job_id = page.locator("#job-title").inner_text().removeprefix("Job ")
    assert page.url.endswith(f"/console#/jobs/{job_id}")
    line = page.locator("#job-line").inner_text()
    assert "ETA" not in line and re.search(r"[\d,]+ rows/s", line), line
    views_at_both_widths(page, "3-job")
    # And a reload comes back to the same job, not to the start page
    page.reload()
    expect(page.locator("#job-title")).to_have_text(f"Job {job_id}")
    expect(page.locator("#job-line")).to_have_text(re.compile(r"^completed: 100\.0% · 15/15 rows"))
    # And the ok-rows download is named for its segment
    with page.expect_download() as download:
        page.get_by_role("button", name="Only ok rows (CSV)").click()
    assert download.value.suggested_filename == "leads.enriched.ok.csv"
    # When the jobs list is opened on a 375 px phone
    page.get_by_role("button", name="Jobs").click()
    page.set_viewport_size({"width": WIDTHS["phone"], "height": 800})
    open_link = page.get_by_role("link", name=f"Open job {job_id}")
    box = open_link.bounding_box()
    # Then the job's Open link is on screen, and it opens the job
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= WIDTHS["phone"], box
    page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})
    views_at_both_widths(page, "4-jobs")
    open_link.click()
    expect(page.locator("#job-title")).to_have_text(f"Job {job_id}")
    page.get_by_role("button", name="Credits").click()
    page.locator("#ledger tbody tr").first.wait_for()
    assert page.url.endswith("#/credits")
    expect(page.locator("#balance")).to_have_text(re.compile(r"^Balance: 9,9\d\d credits$"))
    views_at_both_widths(page, "5-credits")
    # When a webhook is added at an address where nothing listens
    page.get_by_role("button", name="Webhooks").click()
    dead = f"http://127.0.0.1:{free_port()}/hooks"
    page.get_by_label("Endpoint URL").fill(dead)
    page.get_by_label("Description (optional)").fill("CRM import")
    page.get_by_role("button", name="Add endpoint").click()
    # Then it is listed and its secret is shown once
    expect(page.locator("#webhooks-table")).to_contain_text(dead)
    expect(page.locator("#webhook-secret")).to_contain_text("whsec_")
    # When it is tested
    page.get_by_role("button", name=f"Send a test event to {dead}").click()
    # Then the failure is said in words in the log area, and the delivery log shows that test at once
    outcome = page.locator("#webhook-outcome")
    expect(outcome).to_contain_text(f"Test event not delivered to {dead}: the connection was refused")
    expect(page.locator("#deliveries tbody tr")).to_have_count(1)
    expect(page.locator("#deliveries tbody")).to_contain_text("webhook.test")
    expect(page.locator("#deliveries tbody")).to_contain_text("failed")
    views_at_both_widths(page, "6-webhooks")
    # When it is edited
    page.get_by_role("button", name=f"Edit {dead}").click()
    page.get_by_label("Description (optional)").fill("CRM import (paused)")
    page.get_by_label("Active (deliver events)").uncheck()
    page.get_by_role("button", name="Save changes").click()
    # Then the list shows the change
    expect(page.locator("#webhooks-table")).to_contain_text("CRM import (paused)")
    expect(page.locator("#webhooks-table tbody tr").first).to_contain_text("no")
    # When it is deleted (confirming the dialog)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete {dead}").click()
    # Then it is gone, from the page and from the API
    expect(page.locator("#webhooks-table")).to_contain_text("nothing yet")
    assert server.session(account.key).get(f"{server.base_url}/api/webhooks", timeout=30).json()["webhooks"] == []
    # And no page logged an error, nor failed a request (no favicon request answered 401)
    assert problems == []
    context.close()
