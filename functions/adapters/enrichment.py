"""The online sources a function enriches with: its settings, the provider keys secret, and the answer cache."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from functions.settings import EnrichSettings

if TYPE_CHECKING:
    from functions.enrich.online import Sources

# Rebuilt this often, so a key put into the secret (or rotated) is picked up without a deployment.
REFRESH_SECONDS = 300.0


def _secret(arn: str) -> dict[str, Any]:
    # Imports boto3: only when a secret is configured. The provider gets the adapters' client (the function's own
    # credentials), not one of its own from the process's default session.
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from functions.adapters.aws import client

    provider = SecretsProvider(boto3_client=client("secretsmanager"))
    value = provider.get(arn, transform="json", max_age=int(REFRESH_SECONDS))
    return value if isinstance(value, dict) else {}


def build(settings: EnrichSettings) -> Sources:
    """The sources these settings turn on, with the secret's keys and the DynamoDB answer cache when configured."""
    # The providers (DNS, RDAP, HTTP clients) load with the first request that enriches, not with the handler.
    from functions.adapters.cache import AnswerCache
    from functions.providers.sources import from_settings, with_secrets

    if settings.provider_secret_arn:
        settings = with_secrets(settings, _secret(settings.provider_secret_arn))
    cache = AnswerCache(settings.cache_table) if settings.cache_table else None
    return from_settings(settings, cache)


class RefreshingSources:
    """A function's online sources, built on first use and rebuilt every few minutes (a new key is picked up)."""

    def __init__(self, settings: EnrichSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._built: tuple[float, Sources] | None = None

    def current(self) -> Sources:
        """The sources now."""
        now = time.monotonic()
        with self._lock:
            if self._built is None or now - self._built[0] > REFRESH_SECONDS:
                self._built = (now, build(self.settings))
            return self._built[1]
