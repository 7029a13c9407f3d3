"""Cold-start benchmark: how long importing each Lambda handler module takes in a fresh Python process.

Every handler under functions/handlers/ is imported in a new interpreter `--runs` times (round-robin, so load on the
machine spreads over all of them), next to a bare `import boto3` measured the same way in the same run. Only the
import is timed (inside the child, with perf_counter), not the interpreter's own start. Prints JSON: the median and
every run per module in milliseconds, the target (300 ms), and which handlers miss it.

`--tracing` imports the handlers as Lambda does with active tracing (LAMBDA_TASK_ROOT set: Powertools' Tracer turns
on and loads the X-Ray SDK); the default is tracing off, the local runtime's and a PassThrough function's case.
Usage: ./dev bench coldstart [--runs 5] [--tracing]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 300.0
_PROBE = (
    "import importlib, sys, time\n"
    "t = time.perf_counter()\n"
    "importlib.import_module(sys.argv[1])\n"
    "print((time.perf_counter() - t) * 1000)\n"
)


def handler_modules() -> list[str]:
    """Every handler module of the code asset."""
    folder = ROOT / "functions" / "handlers"
    return sorted(f"functions.handlers.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__")


def child_env(tracing: bool) -> dict[str, str]:
    """The environment of one probe: no settings, no endpoints; Lambda's task root only when tracing is on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BULKAPI_", "AWS_", "POWERTOOLS_", "LAMBDA_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if tracing:
        env["LAMBDA_TASK_ROOT"] = str(ROOT)
        env["AWS_LAMBDA_FUNCTION_NAME"] = "coldstart"
        env["AWS_REGION"] = "us-east-1"
    return env


def import_ms(module: str, env: dict[str, str]) -> float:
    """Milliseconds one fresh interpreter spends importing `module`."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, module], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"importing {module} failed:\n{result.stderr[-2000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tracing", action="store_true", help="import as a Lambda with active tracing does")
    args = parser.parse_args()
    env = child_env(args.tracing)
    modules = ["boto3", *handler_modules()]
    # Bytecode caches are warm in Lambda (the asset ships none, but the layer's are compiled at first start and
    # the runtime's are present): warm them here once so every measured run reads the same files.
    for module in modules:
        import_ms(module, {**env, "PYTHONDONTWRITEBYTECODE": ""})
    runs: dict[str, list[float]] = {m: [] for m in modules}
    for _ in range(args.runs):
        for module in modules:
            runs[module].append(import_ms(module, env))
    medians = {m: round(statistics.median(v), 1) for m, v in runs.items()}
    handlers = {m.rsplit(".", 1)[1]: medians[m] for m in modules if m != "boto3"}
    print(
        json.dumps(
            {
                "runs": args.runs,
                "tracing": args.tracing,
                "target_ms": TARGET_MS,
                "import_boto3_ms": medians["boto3"],
                "handlers_median_ms": handlers,
                "over_target": sorted(h for h, ms in handlers.items() if ms > TARGET_MS),
                "all_runs_ms": {m: [round(x, 1) for x in v] for m, v in runs.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
