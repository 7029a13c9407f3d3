#!/usr/bin/env python3
"""CDK app: builds the bulkapi stack from context, nothing else."""

from __future__ import annotations

import aws_cdk as cdk

from infra.stack import build_app

app: cdk.App = build_app()
app.synth()
