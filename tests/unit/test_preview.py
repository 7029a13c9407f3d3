"""Preview: what creating a job would detect, count and charge, with its first rows enriched; nothing stored."""

from __future__ import annotations

from typing import Any

import pytest

from functions.errors import BulkApiError
from functions.logic import jobs, preview
from tests.helpers import email_csv
from tests.unit.test_job_logic import FakeBlobs, FakeStore


def run_preview(store: Balance, body: bytes, job_type: str = "email", column: str | None = None) -> dict[str, Any]:
    return preview.preview(
        account_id="acct_a", job_type=job_type, body=body, column=column, max_rows=100, max_bytes=10_000, credits=store
    )


class Balance(FakeStore):
    def account_credits(self, account_id: str) -> int | None:
        return self.credits


def test_preview_shows_what_the_job_would_read_count_and_charge_without_storing_it() -> None:
    # Given a semicolon file with a header, 12 rows, one address broken
    body = email_csv(12, bad_every=3).replace(b",", b";")
    store = Balance(credits=50)
    # When it is previewed
    answer = run_preview(store, body)
    # Then the layout, the count and the charge are what creating the job would use
    assert answer["detected"] == {
        "encoding": "utf-8",
        "delimiter": "semicolon",
        "has_header": True,
        "column": "Email",
        "column_index": 1,
    }
    assert answer["columns"] == ["Name", "Email", "Row"]
    assert (answer["total_rows"], answer["credits_required"], answer["balance"]) == (12, 12, 50)
    # And the first ten rows come enriched, each with its row status
    rows = answer["rows"]
    assert len(rows) == 10 and rows[0]["cells"] == ["Person 0", "user0@example0.com", "0"]
    assert rows[0]["value"] == "user0@example0.com" and rows[0]["status"] == "ok"
    assert rows[0]["enrichment"]["domain"] == "example0.com" and rows[0]["error"] is None
    assert (rows[2]["status"], rows[2]["error"]) == ("invalid", "invalid_email")
    # And nothing was stored or reserved
    assert store.jobs == {} and store.credits == 50


BAD = [
    (b"", "email", None),
    (b"Email\r\n", "email", None),
    (b"a@example.com\n", "fax", None),
    (b"PK\x03\x04\x14\x00binary" + bytes(range(256)), "email", None),
    (b"Name,City\r\nAda,London\r\nBob,Paris\r\n", "email", None),
    (b"Email\r\na@example.com\r\n", "email", "Phone"),
    (email_csv(101), "email", None),
    (b"x" * 10_001, "email", None),
    (email_csv(60), "email", None),  # more rows than the balance of 50
]


@pytest.mark.parametrize(("body", "job_type", "column"), BAD)
def test_preview_refuses_exactly_what_creating_the_job_refuses(body: bytes, job_type: str, column: str | None) -> None:
    # When the same form is previewed and posted
    with pytest.raises(BulkApiError) as previewed:
        run_preview(Balance(credits=50), body, job_type, column)
    store = Balance(credits=50)
    with pytest.raises(BulkApiError) as created:
        jobs.create_job(
            account_id="acct_a",
            job_type=job_type,
            filename="f.csv",
            body=body,
            column=column,
            max_rows=100,
            max_bytes=10_000,
            store=store,
            credits=store,
            blobs=FakeBlobs(),
        )
    # Then both answers are the same: status, code, message and details
    assert previewed.value.status_code == created.value.status_code
    assert previewed.value.body() == created.value.body()
