#!/usr/bin/env python3
"""CDK app: builds the bulkapi stack from context (cdk.json plus -c), with the cdk-nag checks on."""

from __future__ import annotations

import aws_cdk as cdk

from infra.stack import build_app

app: cdk.App = build_app(nag=True)
app.synth()
