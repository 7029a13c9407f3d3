"""Each Deps field is typed with its port, so mypy --strict refuses an adapter that does not fill it."""

from __future__ import annotations

import pytest

from tests.helpers import mypy

FIXTURE = "tests/typing/bad_adapter.py"


@pytest.mark.slow  # a second on a warm mypy cache, minutes on a fresh clone's cold one
def test_mypy_rejects_an_adapter_missing_a_port_method() -> None:
    # Given an adapter without `set_status`, handed to the sweeper's Deps (whose store is a SweepStorePort)
    # When mypy --strict checks it (the project's cache: warm after any `./dev mypy`)
    result = mypy("--no-error-summary", "--show-error-codes", FIXTURE)
    # Then it fails on exactly that line, naming the port and the missing method
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, result.stdout
    assert f"{FIXTURE}:" in errors[0]
    assert (
        'Argument "store" to "Deps" has incompatible type "StoreWithoutSetStatus"; expected "SweepStorePort"'
        in (errors[0])
    )
    assert '"StoreWithoutSetStatus" is missing following "SweepStorePort" protocol member' in result.stdout
    assert "set_status" in result.stdout
