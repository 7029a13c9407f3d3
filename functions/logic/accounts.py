"""Accounts and API keys: keys look like enc_live_<random> (enc_test_ in test mode) and are stored hashed."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

from functions.errors import InputError, NotFoundError
from functions.logic.jobs import utcnow


class AccountStorePort(Protocol):
    """Account and key storage."""

    def create_account(self, account_id: str, name: str, credits: int, now: str) -> bool: ...
    def account_credits(self, account_id: str) -> int | None: ...
    def put_api_key(self, api_key: str, account_id: str, key_id: str, now: str) -> None: ...
    def revoke_api_key(self, key_id: str, now: str) -> str | None: ...


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


def create_key(store: AccountStorePort, account_id: str, *, test_mode: bool = False) -> IssuedKey:
    """Issue a key for an existing account (enc_live_... or enc_test_...)."""
    if store.account_credits(account_id) is None:
        raise NotFoundError(f"no account {account_id}", code="account_not_found")
    key = ("enc_test_" if test_mode else "enc_live_") + secrets.token_urlsafe(32)
    key_id = "key_" + secrets.token_hex(8)
    store.put_api_key(key, account_id, key_id, utcnow())
    return IssuedKey(key_id, account_id, key)


def revoke_key(store: AccountStorePort, key_id: str) -> str:
    """Revoke a key by id; it stops working at once (API instances forget cached keys within 30 s)."""
    account = store.revoke_api_key(key_id, utcnow())
    if account is None:
        raise NotFoundError(f"no key {key_id}", code="key_not_found")
    return account
