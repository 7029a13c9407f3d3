"""Fair and faithful results, over HTTP against `bulkapi serve`: a ledger that adds up, variants that expire with
their result, duplicates charged once, phones read in their country, and the spreadsheet guard."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.e2e.conftest import Server, new_account, post_job, wait_ended
from tests.helpers import email_csv, wait_for

pytestmark = pytest.mark.e2e


def ledger_pages(session: requests.Session, server: Server, limit: int) -> tuple[int, list[dict[str, Any]], int]:
    """Every entry of the ledger, following `next_cursor`; (balance, entries, pages)."""
    entries: list[dict[str, Any]] = []
    cursor, pages, balance = None, 0, 0
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        resp = session.get(f"{server.base_url}/api/credits", params=params, timeout=30)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert len(page["entries"]) <= limit
        entries += page["entries"]
        balance, cursor, pages = page["balance"], page["next_cursor"], pages + 1
        if cursor is None:
            return balance, entries, pages


@pytest.mark.slow
def test_paging_the_ledger_after_30_jobs_gives_entries_that_sum_to_the_balance(server: Server) -> None:
    # Given an account that ran 30 jobs (a reservation and a refund each, beside its grant)
    account = new_account(server, 5_000)
    session = server.session(account.key)
    ids = []
    for n in range(30):
        created = post_job(session, server, email_csv(5 + n, bad_every=4))
        assert created.status_code == 202, created.text
        ids.append(created.json()["id"])
    for job_id in ids:
        wait_ended(session, server, job_id, timeout=180)
    wait_for(lambda: len(account.entries()) >= 1 + 2 * 30, timeout=60, what="every job's refund")
    # When the customer pages through the ledger, 7 entries at a time
    balance, entries, pages = ledger_pages(session, server, limit=7)
    # Then every entry is there once, newest first, and they add up to the balance
    assert len(entries) == len(account.entries()) == 61 and pages >= 9
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)
    assert sum(int(e["amount"]) for e in entries) == balance == account.balance
    assert {e["job_id"] for e in entries if e["job_id"]} == set(ids)
    # And a cursor that is not one is refused, not read as the first page
    bad = session.get(f"{server.base_url}/api/credits", params={"cursor": "bm90LWEta2V5"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_cursor"
