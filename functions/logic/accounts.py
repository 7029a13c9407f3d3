"""Accounts and API keys: keys look like enc_live_<random> (enc_test_ in test mode) and are stored hashed."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.errors import InputError, NotFoundError
from functions.logic.clock import utcnow
from functions.logic.ports import AccountStorePort, BalancePort, GrantPort


@dataclass(frozen=True)
class IssuedKey:
    """A new key: the secret is shown once and never stored."""

    key_id: str
    account_id: str
    api_key: str


def create_account(store: AccountStorePort, name: str, credits: int) -> str:
    """A new account id with `credits` as starting balance."""
    if not name.strip():
        raise InputError("an account needs a name", code="invalid_name")
    if credits < 0:
        raise InputError("credits cannot be negative", code="invalid_credits")
    account_id = "acct_" + secrets.token_hex(8)
    if not store.create_account(account_id, name.strip(), credits, utcnow()):
        raise InputError(f"account {account_id} already exists", code="account_exists")
    return account_id


def create_key(store: AccountStorePort, credits: BalancePort, account_id: str, *, test_mode: bool = False) -> IssuedKey:
    """Issue a key for an existing account (enc_live_... or enc_test_...)."""
    _existing(credits, account_id)
    key = ("enc_test_" if test_mode else "enc_live_") + secrets.token_urlsafe(32)
    key_id = "key_" + secrets.token_hex(8)
    store.put_api_key(key, account_id, key_id, utcnow())
    return IssuedKey(key_id, account_id, key)


@dataclass(frozen=True)
class Revocation:
    """A revoked key: when it was revoked, and by when no API instance accepts it any more."""

    key_id: str
    account_id: str
    revoked_at: str
    rejected_everywhere_by: str


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def revoke_key(store: AccountStorePort, key_id: str, *, key_cache_seconds: float) -> Revocation:
    """Revoke a key by id. New API instances refuse it at once; a warm instance that checked it shortly before may
    go on accepting it from its key cache for up to `key_cache_seconds` (ApiSettings.key_cache_seconds)."""
    now = datetime.now(UTC)
    account = store.revoke_api_key(key_id, _iso(now))
    if account is None:
        raise NotFoundError(f"no key {key_id}", code="key_not_found")
    return Revocation(key_id, account, _iso(now), _iso(now + timedelta(seconds=key_cache_seconds)))


def _existing(credits: BalancePort, account_id: str) -> None:
    if credits.account_credits(account_id) is None:
        raise NotFoundError(f"no account {account_id}", code="account_not_found")


def add_credits(store: GrantPort, account_id: str, credits: int) -> int:
    """Grant credits to an account (a `grant` ledger entry in the same transaction); the balance after it."""
    if credits <= 0:
        raise InputError("credits to add must be a positive number", code="invalid_credits")
    _existing(store, account_id)
    store.grant_credits(account_id, credits, utcnow())
    return store.account_credits(account_id) or 0


def list_accounts(store: AccountStorePort) -> list[dict[str, Any]]:
    """Every account: id, name, balance and when it was created, oldest first."""
    return sorted(store.list_accounts(), key=lambda a: (str(a.get("created_at") or ""), str(a["account_id"])))


def list_keys(store: AccountStorePort, credits: BalancePort, account_id: str) -> list[dict[str, Any]]:
    """An account's keys (ids only: the keys themselves are never stored), oldest first, revoked ones marked."""
    _existing(credits, account_id)
    return sorted(store.list_keys(account_id), key=lambda k: (str(k.get("created_at") or ""), str(k["key_id"])))
