"""The ledger's pages: an opaque cursor that continues after an entry and cannot be forged into something else."""

from __future__ import annotations

from typing import Any

import pytest

from functions.errors import InputError
from functions.logic import ledger


class Credits:
    """A ledger in memory, newest first, paged like the credit store."""

    def __init__(self, amounts: list[int]) -> None:
        self.entries = [
            {"sk": f"LEDGER#2030-01-01T00:00:{i:02d}.000Z#job_{i}#reserve", "amount": a} for i, a in enumerate(amounts)
        ][::-1]

    def account_credits(self, account_id: str) -> int | None:
        return sum(e["amount"] for e in self.entries)

    def ledger_page(
        self, account_id: str, limit: int = 50, after: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        start = 0 if after is None else next(i for i, e in enumerate(self.entries) if e["sk"] == after) + 1
        page = self.entries[start : start + limit]
        more = start + limit < len(self.entries)
        return [{"amount": e["amount"]} for e in page], (page[-1]["sk"] if more else None)


def test_following_next_cursor_reads_every_entry_once() -> None:
    credits = Credits([1000, -30, 12, -7, 3, -100, 40])
    seen: list[int] = []
    cursor = None
    while True:
        page = ledger.page(credits, "acct_a", 3, cursor)
        seen += [e["amount"] for e in page["entries"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["amount"] for e in credits.entries] and sum(seen) == page["balance"]


@pytest.mark.parametrize("cursor", ["%%%", "bm90LWEta2V5", ledger.encode_cursor("JOB#job_x") or ""])
def test_a_cursor_that_is_not_a_ledger_position_is_refused(cursor: str) -> None:
    with pytest.raises(InputError) as err:
        ledger.decode_cursor(cursor)
    assert err.value.code == "invalid_cursor"
