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
        return str(self.stack.get_logical_id(construct.node.default_child))


def synthesize(outdir: Path, context: dict[str, Any] | None = None) -> Synth:
    """Synthesize with cdk-nag; a validation failure is recorded, not raised, so the other tests still run."""
    app = build_app({**SKIP_BUNDLING, **(context or {})}, outdir=str(outdir), nag=True)
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
    """The stack as `cdk synth` builds it from cdk.json, bundling skipped."""
    return synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def template(synth: Synth) -> Template:
    """The template, for aws_cdk.assertions."""
    return Template.from_json(synth.template)
