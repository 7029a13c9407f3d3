"""What every route of the api function reads: its dependencies (`Deps`, built once per cold start), the caller's
account, the raw body, and the JSON answer.

`Deps` lives here rather than in handlers/api.py because the routes need its type and api.py includes the routes:
either importing the other would make a circle.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response

from functions.adapters import idempotency
from functions.adapters.accounts import AccountStore
from functions.adapters.blobs import BlobStore
from functions.adapters.credits import CreditStore
from functions.adapters.jobs import JobStore
from functions.adapters.messaging import FetchQueue, FinalizerStarter, WorkQueue
from functions.adapters.webhook_http import WebhookHttp
from functions.adapters.webhooks import WebhookStore
from functions.http.access import KeyCheck
from functions.http.resolver import resolving
from functions.logic.function_ports import ApiBlobPort, ApiCreditPort, ApiJobStorePort, JobReplayPort
from functions.logic.ports import BuildQueuePort, EndpointStorePort, FetchRequestPort, FinalizerPort, TargetPort
from functions.settings import ApiSettings

# A page cursor, as the list routes take it back.
CURSOR_MAX = 1024
CONSOLE_PAGE = Path(__file__).resolve().parents[2] / "console" / "index.html"


@dataclass(frozen=True)
class Deps:
    """What the API needs, built once per cold start from its settings; tests pass fakes."""

    settings: ApiSettings
    store: ApiJobStorePort
    credits: ApiCreditPort
    blobs: ApiBlobPort
    finalizer: FinalizerPort
    variant_queue: BuildQueuePort
    fetches: FetchRequestPort
    webhooks: EndpointStorePort
    targets: TargetPort
    keys: KeyCheck
    idempotency: JobReplayPort
    console_html: str = ""

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> Deps:
        """The real adapters (their boto3 clients are built here, with the first event, not at import)."""
        return cls(
            settings=settings,
            store=JobStore(settings.jobs_table),
            credits=CreditStore(settings.jobs_table),
            blobs=BlobStore(settings.bucket),
            finalizer=FinalizerStarter(settings.finalizer_arn),
            variant_queue=WorkQueue(settings.variant_queue_url),
            fetches=FetchQueue(settings.fetch_queue_url),
            webhooks=WebhookStore(settings.jobs_table),
            targets=WebhookHttp(allow_private=settings.allow_private_targets, timeout=10.0),
            keys=KeyCheck(AccountStore(settings.jobs_table).account_for_key, settings.key_cache_seconds),
            idempotency=idempotency.JobIdempotency(settings.jobs_table),
            console_html=CONSOLE_PAGE.read_text(encoding="utf-8"),
        )


def deps() -> Deps:
    """The dependencies of the event being resolved (put in the resolver's context by the handler)."""
    found: Deps = resolving().context["deps"]
    return found


def account() -> str:
    """The account of the request's key (put in the resolver's context by the key check)."""
    return str(resolving().context["account_id"])


def body_bytes() -> bytes:
    """The request's body as sent."""
    event = resolving().current_event
    raw = event.body or ""
    return base64.b64decode(raw) if event.is_base64_encoded else raw.encode("utf-8")


def json_answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    """A JSON answer (Powertools serializes `body`)."""
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)
