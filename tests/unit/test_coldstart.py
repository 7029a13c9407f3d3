"""Cold start: importing a handler loads neither boto3 nor the X-Ray SDK (bench/coldstart.py measures the time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted(p.stem for p in (ROOT / "functions" / "handlers").glob("*.py") if p.stem != "__init__")
HEAVY = ("boto3", "botocore.session", "aws_xray_sdk", "aws_lambda_powertools.utilities.idempotency")
_PROBE = "import importlib, json, sys; importlib.import_module(sys.argv[1]); print(json.dumps(sorted(sys.modules)))"


@pytest.mark.parametrize("handler", HANDLERS)
def test_importing_a_handler_loads_no_aws_sdk_and_no_tracer(handler: str) -> None:
    # Given a fresh interpreter with tracing off, as bench/coldstart.py and the stack's default run them
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BULKAPI_", "LAMBDA_", "POWERTOOLS_"))}
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, f"functions.handlers.{handler}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(json.loads(result.stdout))
    # Then the SDKs are left for the first request that needs them
    assert sorted(m for m in HEAVY if m in loaded) == []


def test_tracing_on_uses_powertools_tracer(monkeypatch: pytest.MonkeyPatch) -> None:
    from functions import observability

    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(ROOT))
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    assert observability.tracing_enabled()
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert not observability.tracing_enabled()
    monkeypatch.delenv("LAMBDA_TASK_ROOT")
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED")
    assert not observability.tracing_enabled()
