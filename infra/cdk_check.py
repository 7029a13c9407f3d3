"""`./dev cdk-check BASE_REF`: refuse a change that would replace or delete a stateful resource.

CloudFormation replaces a resource whose logical id changes (a renamed or moved construct) or whose replacement
property changes (a table's key schema, a bucket's name): it creates a new, empty one and deletes or keeps aside the
old one. Deletion protection does not stop that. This synthesizes the template at BASE_REF (`git archive` into a
temporary folder) and at the work tree, offline and with bundling skipped, lists every resource that would be
replaced or deleted, and exits 1 if any of them is stateful: a table, a bucket, a queue (its messages), a key, a
secret, a log group, or anything the old template retains (DeletionPolicy Retain/RetainExceptOnCreate/Snapshot).

Each template is synthesized once and cached under .cache/cdk-check by the commit's tree (or the work tree's
sources) and the context. `--allow LOGICAL_ID` accepts one listed resource on purpose (e.g. adopting a restored
table with bulkapi:existingJobsTable, which takes the stack's own table out of the template: it is retained).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "cdk-check"
# A production stage needs an alarm target to synthesize; any address will do for a template comparison.
CHECK_CONTEXT: dict[str, Any] = {"aws:cdk:bundling-stacks": [], "bulkapi:alarmEmail": "cdk-check@example.invalid"}
# What the template is built from (the function code's asset hash too): the work tree's cache key.
SOURCES = ("app.py", "cdk.json", "pyproject.toml", "infra", "functions")

# Properties whose change makes CloudFormation replace the resource (AWS resource type reference, "Update requires:
# Replacement"), for the types this stack uses.
REPLACED_ON: dict[str, tuple[str, ...]] = {
    "AWS::DynamoDB::GlobalTable": ("TableName", "KeySchema", "LocalSecondaryIndexes"),
    "AWS::DynamoDB::Table": ("TableName", "KeySchema", "LocalSecondaryIndexes"),
    "AWS::S3::Bucket": ("BucketName", "ObjectLockEnabled"),
    "AWS::SQS::Queue": ("QueueName", "FifoQueue"),
    "AWS::SNS::Topic": ("TopicName", "FifoTopic"),
    "AWS::KMS::Key": ("KeySpec", "MultiRegion"),
    "AWS::SecretsManager::Secret": ("Name",),
    "AWS::Logs::LogGroup": ("LogGroupName",),
    "AWS::Events::EventBus": ("Name",),
    "AWS::StepFunctions::StateMachine": ("StateMachineName", "StateMachineType"),
    "AWS::Lambda::Function": ("FunctionName",),
}
# Types that hold data: replacing or deleting one loses it (or leaves it behind, detached from the stack).
STATEFUL_TYPES = frozenset(
    {
        "AWS::DynamoDB::GlobalTable",
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::SQS::Queue",
        "AWS::KMS::Key",
        "AWS::SecretsManager::Secret",
        "AWS::Logs::LogGroup",
        "AWS::Events::EventBus",
    }
)
RETAINING = frozenset({"Retain", "RetainExceptOnCreate", "Snapshot"})

_SYNTH = """
import json, sys
from infra.stack import build_app, the_stack
app = build_app(json.loads(sys.argv[3]), outdir=sys.argv[1])
json.dump(app.synth().get_stack_by_name(the_stack(app).stack_name).template, open(sys.argv[2], "w"))
"""


@dataclass(frozen=True)
class Change:
    """A resource of the old template that the new one replaces or deletes."""

    logical_id: str
    cfn_type: str
    action: str  # "replaced" or "deleted"
    reason: str
    stateful: bool

    def line(self) -> str:
        """One line of the report."""
        mark = "STATEFUL" if self.stateful else "stateless"
        return f"{self.action.upper():8} {mark:9} {self.logical_id} ({self.cfn_type}): {self.reason}"


def is_stateful(resource: Mapping[str, Any]) -> bool:
    """Holds data: a stateful type, or a resource its template keeps on delete or replacement."""
    return resource.get("Type") in STATEFUL_TYPES or resource.get("DeletionPolicy") in RETAINING


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every resource of `old` that deploying `new` over it would replace or delete."""
    before: Mapping[str, Any] = old.get("Resources", {})
    after: Mapping[str, Any] = new.get("Resources", {})
    found = []
    for logical_id, resource in sorted(before.items()):
        cfn_type = str(resource.get("Type"))
        stateful = is_stateful(resource)
        successor = after.get(logical_id)
        if successor is None:
            found.append(Change(logical_id, cfn_type, "deleted", "its logical id is gone", stateful))
            continue
        if successor.get("Type") != cfn_type:
            found.append(Change(logical_id, cfn_type, "replaced", f"its type is now {successor.get('Type')}", stateful))
            continue
        props, new_props = resource.get("Properties") or {}, successor.get("Properties") or {}
        differ = [name for name in REPLACED_ON.get(cfn_type, ()) if props.get(name) != new_props.get(name)]
        if differ:
            found.append(Change(logical_id, cfn_type, "replaced", f"{', '.join(differ)} changed", stateful))
    return found


def _tree_key(ref: str) -> str:
    tree = subprocess.run(  # noqa: S603 - git with our arguments
        ["git", "rev-parse", f"{ref}^{{tree}}"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"tree-{tree}"


def _work_tree_key() -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        path = ROOT / name
        files = (
            sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
            if path.is_dir()
            else [path]
        )
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return f"work-{digest.hexdigest()[:20]}"


def synthesize(tree: Path, context: Mapping[str, Any], cache_key: str) -> dict[str, Any]:
    """The stack's template as the sources in `tree` build it (cached by `cache_key` and the context)."""
    given = json.dumps(dict(context), sort_keys=True)
    target = CACHE / f"{cache_key}-{hashlib.sha256(given.encode()).hexdigest()[:8]}.json"
    if not target.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # offline: no account, no endpoint
        env.update(JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1", JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="1")
        # The tree's own packages first: sys.path[0] is the working directory, ahead of the editable install.
        env["PYTHONPATH"] = str(tree)
        with tempfile.TemporaryDirectory(prefix="cdk-check-") as outdir:
            tmp = target.with_suffix(f".{os.getpid()}.tmp")
            result = subprocess.run(  # noqa: S603 - our interpreter and script
                [sys.executable, "-c", _SYNTH, outdir, str(tmp), given],
                cwd=tree,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(f"synth of {tree} failed:\n{result.stderr[-3000:]}")
        tmp.replace(target)
    return dict(json.loads(target.read_text()))


def base_template(ref: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """The template at a git ref: its files exported with `git archive` (the work tree is not touched)."""
    key = _tree_key(ref)
    with tempfile.TemporaryDirectory(prefix="cdk-check-base-") as tmp:
        archive = Path(tmp) / "base.tar"
        subprocess.run(  # noqa: S603
            ["git", "archive", "--format=tar", "-o", str(archive), ref],  # noqa: S607
            cwd=ROOT,
            check=True,
        )
        tree = Path(tmp) / "tree"
        tree.mkdir()
        with tarfile.open(archive) as tar:
            tar.extractall(tree, filter="data")
        return synthesize(tree, context, key)


def ref_exists(ref: str) -> bool:
    """Whether git knows the ref (HEAD~1 does not exist on a first commit or a shallow clone)."""
    return (
        subprocess.run(  # noqa: S603
            ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )


def report(found: Sequence[Change], allowed: set[str]) -> tuple[list[str], bool]:
    """The report's lines, and whether a stateful resource would be replaced or deleted without an --allow."""
    lines = [change.line() + ("  [allowed]" if change.logical_id in allowed else "") for change in found]
    refused = [c for c in found if c.stateful and c.logical_id not in allowed]
    if not found:
        lines.append("no resource would be replaced or deleted")
    elif refused:
        names = ", ".join(c.logical_id for c in refused)
        lines.append(
            f"refused: {len(refused)} stateful resource(s) would be replaced or deleted: {names}. Keep their logical "
            "ids (infra/storage.py pins them) and replacement properties, or pass --allow LOGICAL_ID if you mean it."
        )
    else:
        lines.append("no stateful resource would be replaced or deleted")
    return lines, bool(refused)


def _context(pairs: Sequence[str]) -> dict[str, Any]:
    context = dict(CHECK_CONTEXT)
    for pair in pairs:
        key, _, value = pair.partition("=")
        context[key] = value
    return context


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0: nothing stateful replaced or deleted; 1: something is; 2: the check could not run."""
    parser = argparse.ArgumentParser(prog="cdk-check", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("base", nargs="?", default="HEAD~1", help="git ref to compare the work tree with")
    parser.add_argument("-c", "--context", action="append", default=[], help="CDK context key=value (both sides)")
    parser.add_argument("--allow", action="append", default=[], help="a logical id that may be replaced or deleted")
    parser.add_argument("--templates", nargs=2, metavar=("OLD", "NEW"), help="compare two template files instead")
    parser.add_argument(
        "--base-optional", action="store_true", help="exit 0 when the base ref does not exist or does not synthesize"
    )
    args = parser.parse_args(argv)
    try:
        if args.templates:
            old, new = (json.loads(Path(p).read_text()) for p in args.templates)
        else:
            if not ref_exists(args.base):
                print(f"cdk-check: {args.base} does not exist", file=sys.stderr)
                return 0 if args.base_optional else 2
            context = _context(args.context)
            try:
                old = base_template(args.base, context)
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                print(f"cdk-check: cannot synthesize {args.base}: {exc}", file=sys.stderr)
                return 0 if args.base_optional else 2
            new = synthesize(ROOT, context, _work_tree_key())
    except (RuntimeError, OSError, ValueError, subprocess.CalledProcessError) as exc:
        print(f"cdk-check: {exc}", file=sys.stderr)
        return 2
    lines, refused = report(changes(old, new), set(args.allow))
    print("\n".join(lines))
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
