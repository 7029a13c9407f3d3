"""One local runtime (moto server + wiring) for the integration tests, in this process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from functions.adapters.accounts import AccountStore
from functions.adapters.credits import CreditStore
from functions.adapters.jobs import JobStore
from local.runtime import DEV_ACCOUNT, LocalRuntime, Options


@pytest.fixture(scope="session")
def runtime() -> Iterator[LocalRuntime]:
    """The stack as the local runtime builds it from the synthesized template."""
    rt = LocalRuntime(
        Options(port=0, dev_token="test-key", dev_credits=1_000_000, overrides={"BULKAPI_ROWS_PER_BATCH": "100"})
    )
    rt.start()
    yield rt
    rt.stop()


@pytest.fixture()
def store(runtime: LocalRuntime) -> JobStore:
    """The jobs table adapter."""
    return JobStore(runtime.table)


@pytest.fixture()
def credit_store(runtime: LocalRuntime) -> CreditStore:
    """The credits adapter (balances, ledger, reservations) on the same table."""
    return CreditStore(runtime.table)


@pytest.fixture()
def account_store(runtime: LocalRuntime) -> AccountStore:
    """The accounts and keys adapter on the same table."""
    return AccountStore(runtime.table)


@pytest.fixture()
def api(runtime: LocalRuntime) -> Any:
    """A requests session authenticated as the dev account, with the base URL."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {runtime.api_key}"
    session.base = runtime.base_url  # type: ignore[attr-defined]
    return session


@pytest.fixture()
def account() -> str:
    """The dev account's id."""
    return DEV_ACCOUNT
