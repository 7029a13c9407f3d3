"""The house rules as tests: ruff (lint + format) on the whole tree, mypy --strict on functions, infra, local."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_ruff_lint_passes() -> None:
    result = run(str(BIN / "ruff"), "check", "functions", "infra", "local", "tests", "bench", "app.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied() -> None:
    result = run(str(BIN / "ruff"), "format", "--check", "functions", "infra", "local", "tests", "bench", "app.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_passes() -> None:
    result = run(str(BIN / "mypy"), "functions", "infra", "local")
    assert result.returncode == 0, result.stdout + result.stderr


def test_logic_and_enrich_import_no_boto3() -> None:
    # The import direction rule: handlers -> logic -> adapters; only adapters talk to AWS.
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("functions/logic", "functions/enrich")
        for path in (ROOT / folder).rglob("*.py")
        if "import boto3" in path.read_text() or "from boto3" in path.read_text() or "botocore" in path.read_text()
    ]
    assert offenders == []
