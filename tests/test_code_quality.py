"""The house rules as tests: ruff (lint + format) on the whole tree, mypy --strict on the code that ships."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import mypy

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_ruff_lint_passes() -> None:
    result = run(str(BIN / "ruff"), "check", "functions", "infra", "local", "client", "tests", "bench", "app.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied() -> None:
    result = run(
        str(BIN / "ruff"), "format", "--check", "functions", "infra", "local", "client", "tests", "bench", "app.py"
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow  # a cold mypy --strict over the CDK types takes a minute or more
def test_mypy_strict_passes() -> None:
    result = mypy("functions", "infra", "local", "client")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_import_contracts_hold() -> None:
    # The layers (handlers -> http -> adapters -> logic), logic without I/O and enrich without AWS: pyproject.toml's
    # [tool.importlinter] contracts, checked on the import graph rather than by searching text.
    result = run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
