"""The local runtime's own process hygiene: nothing it starts outlives it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import os, sys
sys.path.insert(0, sys.argv[1])
from local.runtime import LocalRuntime, Options
if __name__ == "__main__":
    rt = LocalRuntime(Options(port=0, processes=2)).start()
    print(rt.emulation.process.pid, *rt.invoker.isolated_pids, flush=True)
    os._exit(1)  # killed: no stop(), no cleanup
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes: it only waits to be reaped.
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split(")")[-1].split()[0] != "Z"


def test_the_aws_emulation_and_the_function_processes_end_when_the_runtime_is_killed() -> None:
    # Given a runtime with two worker processes, two api processes, and one each for the splitter, the finalizer, the
    # variants function, the webhook sender and the authorizer (the others start at their first invocation), whose
    # own process dies without stopping anything
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT)], capture_output=True, text=True, timeout=120, check=False, cwd=ROOT
    )
    emulation, *functions = (int(pid) for pid in out.stdout.strip().splitlines()[-1].split())
    assert len(functions) == 9
    # Then neither its emulation process nor its function processes linger
    for child in (emulation, *functions):
        wait_for(lambda pid=child: not alive(pid), timeout=15, interval=0.2, what=f"process {child} to exit")
