"""One synthesis of the stack per session (bundling skipped, cdk-nag on), shared by every infra test."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.config import StackConfig
from infra.stack import BulkApiStack, build_app, the_stack

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")

SKIP_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}
# The default stage (cdk.json: prod) is a production stage, which refuses to synthesize without an alarm target:
# tests synthesize it as an operator would deploy it, with an address subscribed.
ALARM_EMAIL = "ops@example.com"
SYNTH_CONTEXT: dict[str, Any] = {**SKIP_BUNDLING, "bulkapi:alarmEmail": ALARM_EMAIL}


@dataclass
class Synth:
    """The synthesized app: the stack object, its template, and what the validation (cdk-nag) said."""

    stack: BulkApiStack
    outdir: Path
    template: dict[str, Any]
    validation_error: str | None

    @property
    def config(self) -> StackConfig:
        """The configuration the stack was built with."""
        return self.stack.config

    @property
    def report(self) -> dict[str, Any] | None:
        """CDK's validation report, written only when a plugin found something."""
        path = self.outdir / "validation-report.json"
        return dict(json.loads(path.read_text())) if path.exists() else None

    def resources(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        """Resources of one CloudFormation type, by logical id."""
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == cfn_type}

    def logical_id(self, construct: Any) -> str:
        """The logical id of an L2 construct's CloudFormation resource."""
        # The resource's own logical id, pinned ones (override_logical_id) included.
        return str(self.stack.resolve(construct.node.default_child.logical_id))


def synthesize(outdir: Path, context: dict[str, Any] | None = None) -> Synth:
    """Synthesize with cdk-nag; a validation failure is recorded, not raised, so the other tests still run."""
    app = build_app({**SYNTH_CONTEXT, **(context or {})}, outdir=str(outdir), nag=True)
    stack = the_stack(app)
    error = None
    try:
        app.synth()
    except RuntimeError as exc:  # jsii surfaces CDK's ValidationFailed as RuntimeError
        error = str(exc)
    template = json.loads((outdir / f"{stack.artifact_id}.template.json").read_text())
    return Synth(stack=stack, outdir=outdir, template=template, validation_error=error)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The stack as `cdk deploy -c bulkapi:alarmEmail=...` builds it from cdk.json, bundling skipped."""
    return synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def template(synth: Synth) -> Template:
    """The template, for aws_cdk.assertions."""
    return Template.from_json(synth.template)


@pytest.fixture(scope="session")
def dev_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """A throw-away non-production stage as CI would deploy it: no alarm target, marked ephemeral, no reserved
    concurrency (a new AWS account cannot reserve any)."""
    return synthesize(
        tmp_path_factory.mktemp("cdk.out.dev"),
        {
            "bulkapi:stage": "dev",
            "bulkapi:alarmEmail": "",
            "bulkapi:ephemeral": "true",
            "bulkapi:apiReservedConcurrency": "",
            "bulkapi:streamReservedConcurrency": "",
        },
    )
