"""boto3 client construction shared by the adapters (one cached client per service and region)."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Adaptive retries absorb throttling; the timeouts keep a stuck call from eating a Lambda's whole budget.
_CONFIG = Config(retries={"max_attempts": 5, "mode": "adaptive"}, connect_timeout=5, read_timeout=30)


@cache
def client(service: str, signature_version: str | None = None) -> Any:
    """A boto3 client for the service; honours AWS_ENDPOINT_URL, so the local runtime needs no code change."""
    if signature_version is None:
        return boto3.client(service, config=_CONFIG)
    return boto3.client(service, config=_CONFIG.merge(Config(signature_version=signature_version)))
