"""The credit ledger as a customer reads it: every entry, newest first, in pages they can add up to the balance."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from functions.errors import InputError
from functions.logic.ports import LedgerPort

# What an entry's sort key starts with (functions/adapters/credits.py LEDGER_PREFIX), and how long one can be.
_PREFIX = "LEDGER#"
_SORT_KEY_MAX = 512


def encode_cursor(sort_key: str | None) -> str | None:
    """An opaque cursor for the page after the entry with this sort key (None: there is no next page)."""
    if sort_key is None:
        return None
    return base64.urlsafe_b64encode(sort_key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The sort key in a cursor made by `encode_cursor`; 400 invalid_cursor for anything else.

    The cursor carries only the entry's sort key; the account comes from the key, so a cursor cannot reach another
    account's entries.
    """
    if not cursor:
        return None
    invalid = InputError("the cursor is not valid; use `next_cursor` of the previous page", code="invalid_cursor")
    try:
        sort_key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise invalid from exc
    if not sort_key.startswith(_PREFIX) or len(sort_key) > _SORT_KEY_MAX or not sort_key.isprintable():
        raise invalid
    return sort_key


def page(credits: LedgerPort, account_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """`{"balance", "entries", "next_cursor"}`: one page of the ledger, newest first, and where the next one starts."""
    entries, last = credits.ledger_page(account_id, limit, decode_cursor(cursor))
    return {
        "balance": credits.account_credits(account_id) or 0,
        "entries": entries,
        "next_cursor": encode_cursor(last) if entries else None,
    }
