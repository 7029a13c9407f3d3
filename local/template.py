"""Synthesize the CDK app (cached by a hash of its sources) and resolve CloudFormation intrinsics locally."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
# What the template depends on: a change to any of these re-synthesizes.
SOURCES = ["app.py", "cdk.json", "infra", "functions/settings.py", "pyproject.toml"]

# Not a production stage: nothing here pages anyone or sits behind WAF, so the stack needs no alarm target.
_SYNTH = """
import json, sys
from infra.stack import build_app, the_stack
context = {"aws:cdk:bundling-stacks": [], "bulkapi:production": False, **json.loads(sys.argv[3])}
app = build_app(context, outdir=sys.argv[1])
template = app.synth().get_stack_by_name(the_stack(app).stack_name).template
json.dump(template, open(sys.argv[2], "w"))
"""


def source_hash() -> str:
    """A hash of every file the template is built from."""
    digest = hashlib.sha256()
    for name in SOURCES:
        path = ROOT / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def load_template(context: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The stack's CloudFormation template, synthesized once per source change and context (a few seconds, needs
    Node.js); `context` adds CDK context values (`-c` on the command line) to cdk.json's."""
    CACHE.mkdir(exist_ok=True)
    given = json.dumps(dict(context or {}), sort_keys=True)
    suffix = "" if not context else "-" + hashlib.sha256(given.encode()).hexdigest()[:8]
    target = CACHE / f"template-{source_hash()}{suffix}.json"
    if not target.exists():
        # One synth per template: a process that finds another synthesizing it (parallel test servers on a fresh
        # clone) waits for that one's result instead of running its own (~10 s of a core each).
        with (CACHE / f"{target.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not target.exists():
                _synth(target, given)
    return dict(json.loads(target.read_text()))


def _synth(target: Path, given: str) -> None:
    """Synthesize the template into `target` (in a process of its own: jsii starts a Node.js kernel)."""
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    env = {
        **os.environ,
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1",
    }
    for var in [v for v in env if v.startswith("AWS_")]:
        env.pop(var)  # synth must not depend on credentials or endpoints
    # An output folder per process: two cold starts at once (parallel test servers on a fresh clone) would
    # otherwise write and read one cdk.out at the same time (ENOENT on the template).
    outdir = CACHE / f"cdk.out.{os.getpid()}"
    try:
        result = subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", _SYNTH, str(outdir), str(tmp), given],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
    if result.returncode != 0:
        raise RuntimeError(f"cdk synth failed:\n{result.stderr[-4000:]}")
    tmp.replace(target)


class Resolver:
    """Resolves Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select against local physical ids."""

    def __init__(self, refs: dict[str, Any], attrs: Callable[[str, str], Any], pseudo: dict[str, str]) -> None:
        self.refs, self.attrs, self.pseudo = refs, attrs, pseudo

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.pseudo[arg] if arg in self.pseudo else self.refs[arg]
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attrs(logical, attr)
            if key == "Fn::Join":
                sep, parts = arg
                return sep.join(str(self(p)) for p in parts)
            if key == "Fn::Select":
                index, items = arg
                return self(items)[int(index)]
            if key == "Fn::Split":
                sep, text = arg
                return str(self(text)).split(sep)
            if key == "Fn::Sub":
                return self._sub(arg)
        return {k: self(v) for k, v in value.items()}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        out = str(text)
        for name, val in variables.items():
            out = out.replace("${" + name + "}", str(self(val)))
        while "${" in out:
            start = out.index("${")
            end = out.index("}", start)
            name = out[start + 2 : end]
            if "." in name:
                logical, attr = name.split(".", 1)
                repl = self.attrs(logical, attr)
            else:
                repl = self.pseudo[name] if name in self.pseudo else self.refs[name]
            out = out[:start] + str(repl) + out[end + 1 :]
        return out
