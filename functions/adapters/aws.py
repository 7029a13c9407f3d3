"""boto3 client construction shared by the adapters (one cached client per service and region).

boto3 is imported when the first client is built, not when an adapter module is: importing boto3 (and botocore's
config) costs 100-200 ms of every cold start on a small machine, and a handler that never reaches AWS on a path
(a health check, an invalid request, the local runtime's in-process functions) should not pay it. bench/coldstart.py
measures it; tests/unit/test_coldstart.py keeps handler imports free of boto3.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache
from typing import Any

# The credentials of the function whose code runs in this context (an access key id and its secret), or None: boto3's
# own chain (in Lambda, the execution role's keys in the environment). The local runtime runs several functions in
# one process and gives each its own keys, so that each call is checked against that function's role.
_credentials: ContextVar[tuple[str, str] | None] = ContextVar("bulkapi_aws_credentials", default=None)


@contextlib.contextmanager
def credentials(access_key_id: str, secret_access_key: str) -> Iterator[None]:
    """Clients built or used inside this block sign with these credentials (the local runtime: one function's)."""
    token = _credentials.set((access_key_id, secret_access_key))
    try:
        yield
    finally:
        _credentials.reset(token)


def client(service: str, signature_version: str | None = None) -> Any:
    """A boto3 client for the service; honours AWS_ENDPOINT_URL, so the local runtime needs no code change."""
    return _client(service, signature_version, _credentials.get())


@cache
def _client(service: str, signature_version: str | None, keys: tuple[str, str] | None) -> Any:
    import boto3
    from botocore.config import Config

    # Adaptive retries absorb throttling; the timeouts keep a stuck call from eating a Lambda's whole budget.
    config = Config(retries={"max_attempts": 5, "mode": "adaptive"}, connect_timeout=5, read_timeout=30)
    if signature_version is not None:
        config = config.merge(Config(signature_version=signature_version))
    if keys is None:
        return boto3.client(service, config=config)
    return boto3.client(service, config=config, aws_access_key_id=keys[0], aws_secret_access_key=keys[1])


def clear_clients() -> None:
    """Forget the cached clients (the local runtime starts a new emulation, with new keys, at a new endpoint)."""
    _client.cache_clear()
    # boto3's default session resolves the environment's keys once and keeps them: a second runtime in one process
    # (a test worker running several files) signed with the first one's keys ("security token ... invalid").
    boto3: Any = sys.modules.get("boto3")
    if boto3 is not None:
        boto3.DEFAULT_SESSION = None


class _DynamoTypes:
    """boto3's TypeSerializer or TypeDeserializer, built on first use (importing them imports all of boto3)."""

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._instance: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._instance is None:
            from boto3.dynamodb import types

            self._instance = getattr(types, self._kind)()
        return getattr(self._instance, name)


def type_serializer() -> Any:
    """A DynamoDB TypeSerializer (`.serialize`), loaded on first use."""
    return _DynamoTypes("TypeSerializer")


def type_deserializer() -> Any:
    """A DynamoDB TypeDeserializer (`.deserialize`), loaded on first use."""
    return _DynamoTypes("TypeDeserializer")
