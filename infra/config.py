"""Stack configuration from CDK context (`cdk.json` plus `-c key=value`).

This is the shared topology declaration: the stack builds the queues, event source mappings and limits from it,
and the local runtime reads the same values back out of the synthesized template.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from constructs import Node
from pydantic import BaseModel, Field, field_validator, model_validator

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"
CONTEXT_PREFIX = "bulkapi:"


class StackConfig(BaseModel):
    """Everything an operator can set at deploy time; the defaults here equal the values in cdk.json."""

    # Names the stack (`BulkApi-<stage>`: letters, digits, hyphens) and the API Gateway stage.
    stage: str = Field(default="prod", pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")
    # A stage that serves customers: it needs an alarm target and gets WAF by default. Unset: a stage named `prod`
    # or `prod-...` is one, any other (dev, staging, pr-42) is not.
    production: bool | None = None
    # A throw-away stage (CI, a pull request's preview): no termination protection, so `cdk destroy` just works.
    ephemeral: bool = False
    # Adopt a table or bucket that already exists (a restore from PITR, a migration) instead of the stack's own:
    # its name; the stack then neither creates nor owns it (README "Restoring the jobs table").
    existing_jobs_table: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{3,255}$")
    existing_bucket: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    # Limits the API and the splitter enforce.
    max_rows_per_job: int = Field(default=1_000_000, ge=1)
    max_upload_bytes: int = Field(default=4 * 1024 * 1024, ge=1)
    # Presigned uploads (`POST /api/bulk-jobs` with JSON): the largest file S3 accepts, and how long a form lasts.
    max_upload_object_bytes: int = Field(default=1024**3, ge=1, le=5 * 1024**3)
    upload_url_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    rows_per_batch: int = Field(default=2500, ge=1)
    # The worker's event source mapping and queue.
    worker_batch_size: int = Field(default=4, ge=1, le=10)
    worker_max_concurrency: int = Field(default=10, ge=2, le=1000)
    worker_timeout_seconds: int = Field(default=120, ge=10, le=900)
    max_receive_count: int = Field(default=5, ge=5)
    # Retention: results/ and the job's download; staging prefixes (uploads/, drop/, parts/, rejected/).
    retention_days: int = Field(default=30, ge=1)
    staging_expiry_days: int = Field(default=7, ge=1)
    access_log_expiry_days: int = Field(default=90, ge=1)
    log_retention_days: int = Field(default=30, ge=1)
    # X-Ray on the functions (active tracing, Powertools' Tracer): costs 100-150 ms per cold start (bench/coldstart.py).
    tracing: bool = False
    deletion_protection: bool = True
    # API Gateway stage throttling (requests per second, steady and burst) and CORS.
    api_rate_limit: float = Field(default=50, gt=0)
    api_burst_limit: int = Field(default=100, ge=1)
    cors_origins: list[str] = Field(default_factory=list)
    # Per-account limits (usage plan, per API key = per account), requests per second, steady and burst.
    account_rate_limit: float = Field(default=10, gt=0)
    account_burst_limit: int = Field(default=20, ge=1)
    # Reserved concurrency of the API and stream functions: a cap, and a share no other function can take. Unset
    # (empty): no reservation (an account whose concurrency quota is 10 cannot reserve any).
    api_reserved_concurrency: int | None = Field(default=20, ge=1)
    stream_reserved_concurrency: int | None = Field(default=10, ge=1)
    # AWS WAF on the API stage: AWS's managed rule sets and a rate-based rule per client IP (requests per 5 minutes).
    # Unset: on for production stages.
    waf: bool | None = None
    waf_rate_limit: int = Field(default=2000, ge=10)
    # Enrichment: phone numbers without `+`, the answer cache, and which online providers are on (keys: the secret).
    phone_default_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    cache_ttl_seconds: int = Field(default=86_400, ge=60)
    dns_enabled: bool = False
    rdap_enabled: bool = False
    website_enabled: bool = False
    hibp_requests_per_minute: float = Field(default=10, gt=0)
    search_requests_per_minute: float = Field(default=100, gt=0)
    # The Lambda Web Adapter layer of the stream function; unset: the table in infra/web_adapter.py, by region.
    web_adapter_layer_arn: str | None = None
    # Alarms: the stack's topic notifies this address (confirm the subscription e-mail), and an existing SNS topic
    # too when given; when queued work counts as stuck.
    alarm_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    alarm_topic_arn: str | None = None
    work_age_alarm_minutes: int = Field(default=30, ge=1)
    # Remote files (jobs from a URL): fetches at once (the fetcher's MaximumConcurrency), and how many of them one
    # account may hold, fewer than all, so one account's slow URLs never hold every fetch.
    fetch_concurrency: int = Field(default=5, ge=2, le=1000)
    fetch_concurrency_per_account: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _fetch_share(self) -> StackConfig:
        if self.fetch_concurrency_per_account >= self.fetch_concurrency:
            raise ValueError(
                f"bulkapi:fetchConcurrencyPerAccount ({self.fetch_concurrency_per_account}) must be below "
                f"bulkapi:fetchConcurrency ({self.fetch_concurrency}): one account may not hold every fetch"
            )
        return self

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        # `-c bulkapi:corsOrigins=https://a.example,https://b.example` arrives as one string.
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator(
        "alarm_topic_arn",
        "alarm_email",
        "production",
        "waf",
        "existing_jobs_table",
        "existing_bucket",
        "web_adapter_layer_arn",
        "api_reserved_concurrency",
        "stream_reserved_concurrency",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @model_validator(mode="after")
    def _production_is_not_ephemeral(self) -> StackConfig:
        if self.production and self.ephemeral:
            raise ValueError("a production stage cannot be ephemeral (bulkapi:production and bulkapi:ephemeral)")
        return self

    @property
    def is_production(self) -> bool:
        """Whether the stage serves customers: `bulkapi:production`, else a stage named `prod` or `prod-...`."""
        if self.production is not None:
            return self.production
        return not self.ephemeral and (self.stage == "prod" or self.stage.startswith("prod-"))

    @property
    def waf_enabled(self) -> bool:
        """WAF on the stage: `bulkapi:waf`, else on for production stages."""
        return self.is_production if self.waf is None else self.waf

    @staticmethod
    def context_key(field: str) -> str:
        """`max_rows_per_job` -> `bulkapi:maxRowsPerJob`."""
        first, *rest = field.split("_")
        return CONTEXT_PREFIX + first + "".join(part.capitalize() for part in rest)

    @classmethod
    def from_node(cls, node: Node) -> StackConfig:
        """Read `bulkapi:<camelCase>` context keys; unknown `bulkapi:` keys are an error (a typo would be ignored)."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            value = node.try_get_context(cls.context_key(name))
            if value is not None:
                values[name] = value
        return cls.model_validate(values)

    @classmethod
    def check_keys(cls, context: dict[str, Any]) -> None:
        """Raise on a `bulkapi:` context key that names no setting."""
        known = {cls.context_key(name) for name in cls.model_fields}
        unknown = sorted(k for k in context if k.startswith(CONTEXT_PREFIX) and k not in known)
        if unknown:
            raise ValueError(f"unknown context keys {unknown}; known: {sorted(known)}")


def cdk_json_context() -> dict[str, Any]:
    """The `context` block of cdk.json: tests and the local runtime synthesize with it too, like the CDK CLI."""
    return dict(json.loads(CDK_JSON.read_text()).get("context", {}))
