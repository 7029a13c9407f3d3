#!/usr/bin/env python3
"""CDK app: builds the bulkapi stack from context (cdk.json plus -c), with the cdk-nag checks on."""

from __future__ import annotations

import os

import aws_cdk as cdk

from infra.stack import build_app

# The CDK CLI passes its region (profile, AWS_REGION) as CDK_DEFAULT_REGION: the stack is then bound to it, and
# region-specific choices (the Web Adapter layer) are made, or refused, at synth.
app: cdk.App = build_app(nag=True, region=os.environ.get("CDK_DEFAULT_REGION") or None)
app.synth()
