"""Admin: credits, listings, revocation times, and the command line's option order."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from functions.errors import InputError, NotFoundError
from functions.logic import accounts
from local.cli import build_parser


class Credits:
    def __init__(self) -> None:
        self.balances: dict[str, int] = {"acct_a": 10}
        self.ledger: list[tuple[str, str, int]] = []

    def account_credits(self, account_id: str) -> int | None:
        return self.balances.get(account_id)

    def grant_credits(self, account_id: str, credits: int, now: str, request_id: str | None = None) -> None:
        self.balances[account_id] += credits
        self.ledger.append((account_id, "grant", credits))


class Accounts:
    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {"key_1": {"key_id": "key_1", "owner": "acct_a", "revoked_at": None}}

    def create_account(self, account_id: str, name: str, credits: int, now: str) -> bool:
        raise AssertionError("not used")

    def put_api_key(self, api_key: str, account_id: str, key_id: str, now: str) -> None:
        raise AssertionError("not used")

    def revoke_api_key(self, key_id: str, now: str) -> str | None:
        key = self.keys.get(key_id)
        if key is None:
            return None
        key["revoked_at"] = now
        return str(key["owner"])

    def list_accounts(self) -> list[dict[str, Any]]:
        raise AssertionError("not used")

    def list_keys(self, account_id: str) -> list[dict[str, Any]]:
        return [{"key_id": k, "created_at": None} for k, v in self.keys.items() if v["owner"] == account_id]


def test_add_credits_is_a_grant_in_the_ledger_and_returns_the_balance() -> None:
    store = Credits()
    assert accounts.add_credits(store, "acct_a", 5) == 15
    assert store.ledger == [("acct_a", "grant", 5)]


@pytest.mark.parametrize(("account", "credits", "error"), [("acct_a", 0, InputError), ("acct_x", 5, NotFoundError)])
def test_add_credits_refuses_nothing_to_add_and_unknown_accounts(account: str, credits: int, error: type) -> None:
    store = Credits()
    with pytest.raises(error):
        accounts.add_credits(store, account, credits)
    assert store.ledger == []


def test_revoking_says_when_the_last_cached_instance_stops_accepting_the_key() -> None:
    revoked = accounts.revoke_key(Accounts(), "key_1", key_cache_seconds=30)
    at = datetime.fromisoformat(revoked.revoked_at.replace("Z", "+00:00"))
    until = datetime.fromisoformat(revoked.rejected_everywhere_by.replace("Z", "+00:00"))
    assert until - at == timedelta(seconds=30) and revoked.account_id == "acct_a"
    with pytest.raises(NotFoundError):
        accounts.revoke_key(Accounts(), "key_nope", key_cache_seconds=30)


def test_list_keys_of_an_unknown_account_is_not_found() -> None:
    assert [k["key_id"] for k in accounts.list_keys(Accounts(), Credits(), "acct_a")] == ["key_1"]
    with pytest.raises(NotFoundError):
        accounts.list_keys(Accounts(), Credits(), "acct_x")


@pytest.mark.parametrize(
    "argv",
    [
        ["admin", "--port", "8290", "--table", "T", "add-credits", "acct_a", "5"],
        ["admin", "add-credits", "acct_a", "5", "--port", "8290", "--table", "T"],
        ["admin", "--table", "T", "add-credits", "--port", "8290", "acct_a", "5"],
    ],
)
def test_admin_options_work_before_and_after_the_subcommand(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.port, args.table, args.account, args.credits) == (8290, "T", "acct_a", 5)
