"""The webhooks' contract: endpoint requests and responses, deliveries, and the event receivers get."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ConfigDict, Field

from functions.models.api import SUMMARY_DESCRIPTION, SUMMARY_EXAMPLE, Strict
from functions.models.jobs import JobStatus, Model

WEBHOOK_URL_MAX = 2048
WEBHOOK_DESCRIPTION_MAX = 500
WEBHOOK_EVENTS_MAX = 10
ID_MAX = 64


class WebhookCreateRequest(Strict):
    """A new endpoint."""

    url: str = Field(max_length=WEBHOOK_URL_MAX)
    events: list[str] | None = Field(default=None, max_length=WEBHOOK_EVENTS_MAX)
    description: str | None = Field(default=None, max_length=WEBHOOK_DESCRIPTION_MAX)


class WebhookUpdateRequest(Strict):
    """Changes to an endpoint; fields left out stay as they are."""

    id: str = Field(max_length=ID_MAX)
    url: str | None = Field(default=None, max_length=WEBHOOK_URL_MAX)
    events: list[str] | None = Field(default=None, max_length=WEBHOOK_EVENTS_MAX)
    description: str | None = Field(default=None, max_length=WEBHOOK_DESCRIPTION_MAX)
    is_active: bool | None = None


class WebhookIdRequest(Strict):
    """Names one endpoint."""

    id: str = Field(max_length=ID_MAX)


class WebhookResponse(Strict):
    """An endpoint (its secret is shown only when it is created)."""

    id: str
    workspace_id: str
    url: str
    events: list[str]
    description: str
    is_active: bool
    created_at: str
    updated_at: str


class WebhookCreatedResponse(WebhookResponse):
    """A new endpoint, with the secret that signs its deliveries (shown this once)."""

    secret: str


class WebhookListResponse(Strict):
    """The account's endpoints."""

    webhooks: list[WebhookResponse]


class WebhookDeletedResponse(Strict):
    """An endpoint was removed."""

    id: str
    deleted: Literal[True]


class WebhookTestResponse(Strict):
    """What the endpoint answered to a signed `webhook.test` event."""

    id: str
    webhook_id: str
    event_type: str
    success: bool
    response_status: int | None
    response_body: str | None
    error: str | None


class WebhookDelivery(Model):
    """One delivery and its attempts."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    status: str | None = None
    attempts: int | None = None
    response_status: int | None = None
    response_body: str | None = None
    last_attempt_at: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


class DeliveriesResponse(Strict):
    """An endpoint's last deliveries, newest first."""

    deliveries: list[WebhookDelivery]


class JobEventData(Model):
    """The `data` of a `bulk_job.<status>` webhook event."""

    id: str
    status: JobStatus
    type: str
    total_rows: int | None
    processed: int
    succeeded: int
    invalid: int
    failed: int
    credits_used: int
    duplicates: int = Field(default=0, description="rows repeating an earlier row's value, not charged")
    error: str | None
    completed_at: str | None
    download_url: str | None
    summary: dict[str, dict[str, int]] | None = Field(
        default=None, description=SUMMARY_DESCRIPTION, examples=[SUMMARY_EXAMPLE]
    )


class WebhookEvent(Model):
    """A webhook delivery's body, signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`,
    `webhook-signature` headers)."""

    type: Literal["bulk_job.completed", "bulk_job.failed", "bulk_job.cancelled"]
    timestamp: str
    data: JobEventData


@dataclass(frozen=True)
class Attempt:
    """The outcome of one delivery attempt."""

    status: int  # 0 when no HTTP answer came back
    body: str
    error: str | None = None

    @property
    def delivered(self) -> bool:
        """2xx."""
        return 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        """410 Gone: the receiver asks us to stop."""
        return self.status == 410
