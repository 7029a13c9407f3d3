"""Per-function settings, validated once per cold start by the function's composition root (functions/composition.py).

Every field is read from the environment variable `BULKAPI_<FIELD>`; the CDK stack sets exactly the variables
each function's model declares (tests/infra checks it) and the local runtime sets the same ones.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

PREFIX = "BULKAPI_"


class StorageSettings(BaseModel):
    """What every function needs: the jobs table and the bucket (prefixes uploads/, drop/, parts/, results/)."""

    # Built when a function first reads its settings, not at import (bench/coldstart.py).
    model_config = ConfigDict(defer_build=True)

    jobs_table: str
    bucket: str


class LimitsSettings(StorageSettings):
    """Limits checked when a job is created and again when its file is split."""

    max_rows_per_job: int = Field(default=1_000_000, ge=1)
    max_upload_bytes: int = Field(default=4 * 1024 * 1024, ge=1)
    # The largest content a file may have once uncompressed (a gzip's, a ZIP's, a workbook's; a CSV's is its size).
    max_file_bytes: int = Field(default=1024**3, ge=1)


class ApiSettings(LimitsSettings):
    """The API function."""

    finalizer_arn: str
    allow_private_targets: bool = False
    # Origins whose pages may read the answers (comma-separated; bulkapi:corsOrigins); empty: none.
    cors_origins: str = ""
    key_cache_seconds: float = Field(default=30.0, ge=0)
    download_url_ttl_seconds: int = Field(default=3600, ge=60)
    # Days a result is kept (bulkapi:retentionDays, the results/ lifecycle rule): downloads end after that.
    retention_days: int = Field(default=30, ge=1)
    # Where a download asks for a variant of a result to be built (the variants function's queue).
    variant_queue_url: str

    # Presigned uploads: the largest file S3 accepts through the form, and how long the form may be used.
    max_upload_object_bytes: int = Field(default=1024**3, ge=1)
    upload_url_ttl_seconds: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    # Jobs from a URL: where their fetch is queued.
    fetch_queue_url: str


class VariantSettings(StorageSettings):
    """The variants function: builds filtered, re-delimited and JSON Lines copies of results."""


class SplitterSettings(LimitsSettings):
    """The splitter: cuts a CSV into work messages."""

    work_queue_url: str
    finalizer_arn: str
    rows_per_batch: int = Field(default=2500, ge=1)
    max_batch_bytes: int = Field(default=200_000, ge=10_000)
    split_lease_seconds: int = Field(default=900, ge=1)
    # Phone duplicates are found on the E.164 form, read (without `+`) in this region as the worker reads them.
    phone_default_region: str = "US"


class FetcherSettings(StorageSettings):
    """The fetcher: streams a job's file from the URL it was created with into the bucket."""

    finalizer_arn: str
    # The same cap as a presigned upload's, and a cap on the whole download (its Lambda's timeout is longer).
    max_upload_object_bytes: int = Field(default=1024**3, ge=1)
    fetch_timeout_seconds: float = Field(default=600.0, gt=0)
    # Locally: http to localhost is allowed, as for webhooks. Deployed: https to public addresses only.
    allow_private_targets: bool = False
    # Where a fetch goes back to wait when its account holds all of its fetch slots (bulkapi:fetchConcurrencyPerAccount
    # of the bulkapi:fetchConcurrency fetches at once), and for how long.
    fetch_queue_url: str
    fetch_slots_per_account: int = Field(default=2, ge=1)
    fetch_slot_wait_seconds: int = Field(default=30, ge=1, le=900)


class EnrichSettings(BaseModel):
    """The online enrichment sources and their answer cache (README "Online enrichment"); all off by default.

    API keys may be set here (locally) or, in AWS, in the Secrets Manager secret `provider_secret_arn` names: a JSON
    object whose keys are these field names (`hibp_api_key`, `search_api_key`, `search_engine_id`); its values win.
    """

    # Built when a function first reads its settings, not at import (bench/coldstart.py).
    model_config = ConfigDict(defer_build=True)

    # Phone numbers without `+` are read as numbers of this region (ISO 3166 code; ZZ: such numbers are invalid).
    phone_default_region: str = "US"
    cache_table: str = ""
    cache_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    provider_secret_arn: str = ""
    # Lookups in flight at once per provider within one batch (each provider's rate limit still applies).
    provider_concurrency: int = Field(default=64, ge=1, le=256)
    # Time one batch may spend asking one provider; what is left unasked then answers `provider_timeout`. The stack
    # sets the worker's from its timeout and batch size, so a slow or dead provider never times the worker out.
    provider_budget_seconds: float = Field(default=20.0, gt=0)
    # DNS (email, domain): MX, SPF, DMARC, A/AAAA. Nameservers "ip" or "ip:port", comma-separated; empty: the system's.
    dns_enabled: bool = False
    dns_nameservers: str = ""
    dns_timeout_seconds: float = Field(default=2.0, gt=0)
    # RDAP (domain, ip): registration data; rdap.org redirects each query to the authoritative registry or RIR.
    rdap_enabled: bool = False
    rdap_base_url: str = "https://rdap.org"
    rdap_requests_per_minute: float = Field(default=120.0, gt=0)
    # The company's website (company values that are domains): title, description, social links.
    website_enabled: bool = False
    website_timeout_seconds: float = Field(default=5.0, gt=0)
    # Test hook: lets the website fetch reach loopback (link-local and metadata addresses stay refused).
    website_allow_private: bool = False
    # Have I Been Pwned v3 (darkweb); the default rate is the smallest subscription's.
    hibp_api_key: str = ""
    hibp_base_url: str = "https://haveibeenpwned.com/api/v3"
    hibp_requests_per_minute: float = Field(default=10.0, gt=0)
    # A programmable search JSON API (google): Google Custom Search's shape.
    search_api_key: str = ""
    search_engine_id: str = ""
    search_base_url: str = "https://www.googleapis.com/customsearch/v1"
    search_requests_per_minute: float = Field(default=100.0, gt=0)


SECRET_FIELDS: tuple[str, ...] = ("hibp_api_key", "search_api_key", "search_engine_id")


class WorkerSettings(StorageSettings, EnrichSettings):
    """The worker and the dead-letter handler."""

    finalizer_arn: str
    # Where a batch goes back when a provider's budget ran out before all its values were asked; empty: never.
    work_queue_url: str = ""


class FinalizerSettings(StorageSettings):
    """The finalizer's tasks."""

    event_bus_name: str


class WebhookSettings(StorageSettings):
    """The webhook sender (EventBridge events and the retry queue)."""

    retry_queue_url: str
    api_base_url: str = ""
    allow_private_targets: bool = False
    # One attempt's time in all: connect, request, the receiver's answer (a trickling receiver is cut off).
    timeout_seconds: float = Field(default=10.0, gt=0)
    # Test hook: each delivery's fan-out dies once after recording it, before queuing it (only the local e2e tests).
    local_crash_after_record: bool = False


class SweeperSettings(StorageSettings):
    """The scheduled sweeper: how long a job may sit before it is ended."""

    finalizer_arn: str
    start_after_seconds: int = Field(default=900, ge=1)
    split_lease_seconds: int = Field(default=900, ge=1)
    stalled_after_seconds: int = Field(default=6 * 3600, ge=60)
    # A presigned upload's job fails `upload_expired` this long after its form expired with no file (an upload that
    # started just before the expiry may still be arriving). The TTL is the API's: no job can expire younger.
    upload_url_ttl_seconds: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    upload_grace_seconds: int = Field(default=300, ge=0)
    # A URL job is timed from its fetch, not from its creation: it may wait this long for a fetch slot (the fetch
    # queue's retention), and a started fetch may take this long (the fetcher's timeout, and the queue's visibility
    # timeout before a crashed fetch is tried again) before the job fails `fetch_failed`.
    fetch_wait_seconds: int = Field(default=24 * 3600, ge=1)
    fetch_lease_seconds: int = Field(default=15 * 60 + 90 * 60, ge=1)


class AuthorizerSettings(BaseModel):
    """The API's Lambda authorizer: the jobs table holds the hashed keys (KEY#<sha256>)."""

    # Built when a function first reads its settings, not at import (bench/coldstart.py).
    model_config = ConfigDict(defer_build=True)

    jobs_table: str


class StreamSettings(EnrichSettings):
    """The stream function (inline SSE routes): the jobs table (keys, balances, the charge) and the stream knobs."""

    jobs_table: str
    cors_origins: str = ""
    inline_concurrency: int = Field(default=4, ge=1, le=32)
    inline_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # Test hook: slows each value this much, a stand-in for a slow provider (only the local e2e tests set it).
    local_enrich_delay_ms: int = Field(default=0, ge=0)


# Which settings model each function reads, by its handler's name: the stack derives the function's environment from
# it (infra/functions.py), and the handler's composition root validates it (functions/composition.py).
FUNCTION_SETTINGS: dict[str, type[BaseModel]] = {
    "api": ApiSettings,
    "splitter": SplitterSettings,
    "worker": WorkerSettings,
    "dead_letter": WorkerSettings,
    "finalizer": FinalizerSettings,
    "webhooks": WebhookSettings,
    "stream": StreamSettings,
    "sweeper": SweeperSettings,
    "authorizer": AuthorizerSettings,
    "variants": VariantSettings,
    "fetcher": FetcherSettings,
}

S = TypeVar("S", bound=BaseModel)


def env_names(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> environment variable name for a settings model."""
    return {name: PREFIX + name.upper() for name in model.model_fields}


def load(model: type[S], env: Mapping[str, str] | None = None) -> S:
    """Build and validate a settings model from an environment (default: this process's)."""
    source = os.environ if env is None else env
    values = {name: source[var] for name, var in env_names(model).items() if var in source}
    return model.model_validate(values)
