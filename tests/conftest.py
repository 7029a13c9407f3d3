"""Marks for the whole suite: what is slow is named by where it lives, so a new test there is marked too."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# Each of these starts `bulkapi serve`, the local runtime or a CDK synthesis: seconds before the first assertion.
SLOW_FOLDERS = ("e2e", "integration", "infra")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under a slow folder `slow`."""
    for item in items:
        parts = Path(str(item.path)).resolve().relative_to(HERE).parts
        if parts and parts[0] in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)
