"""Domain models shared by handlers, logic and adapters."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JOB_TYPES: tuple[str, ...] = ("email", "phone", "company", "domain", "ip", "darkweb")

RowStatus = Literal["ok", "invalid", "error"]


class _Model(BaseModel):
    """A model whose validator is built when it is first used, not at import: a handler uses few of these."""

    model_config = ConfigDict(defer_build=True)


class JobStatus(StrEnum):
    """The life of a job: (awaiting_upload ->) queued -> processing -> completed | failed; cancelled before it ends.

    A job created for a presigned upload waits in `awaiting_upload` until its file lands in the bucket; one created
    from a URL is `queued` while the file is fetched.
    """

    AWAITING_UPLOAD = "awaiting_upload"
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the job has ended (no counter moves after this, except the finalizer's own writes)."""
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class StoredLayout(_Model):
    """How a job's CSV is read (functions/logic/csv_input.py CsvLayout, less the header kept on the job)."""

    encoding: str
    delimiter: str
    has_header: bool
    column_index: int = Field(ge=0)


class Job(_Model):
    """A bulk job as stored in the jobs table."""

    model_config = ConfigDict(extra="ignore")

    id: str
    account_id: str
    type: str
    status: JobStatus
    source_key: str
    filename: str = ""
    column: str | None = None
    # Phone jobs: the region numbers without `+` are read in (after a row's own country column), and that column's
    # name when the customer named it.
    country: str | None = None
    country_column: str | None = None
    # A workbook's sheet to read (by name); None: the first.
    sheet: str | None = None
    created_at: str
    started_at: str | None = None
    completed_at: str | None = None
    total_rows: int | None = None
    total_batches: int | None = None
    header: list[str] = Field(default_factory=list)
    max_width: int = 0
    detected_column: str | None = None
    # How the splitter read the file: the delimiter is also the result's default delimiter.
    delimiter: str | None = None
    encoding: str | None = None
    # How the file is read, stored when it is first read (the API for a form upload, else the splitter), so it is
    # sniffed once.
    layout: StoredLayout | None = None
    # A presigned upload: until when the form may be used. A remote file: where it is fetched from.
    upload_expires_at: str | None = None
    source_url: str | None = None
    # A remote file's fetch: when its latest attempt started (the sweeper times a URL job from it, not from its
    # creation: a job may wait for a fetch slot), and when the file was stored.
    fetch_started_at: str | None = None
    fetched_at: str | None = None
    # How far the split has read the file (bytes), while total_rows is not known yet.
    split_bytes_read: int | None = None
    split_bytes_total: int | None = None
    split_started_at: str | None = None
    last_progress_at: str | None = None
    batches_done: int = 0
    # The batches already counted (their markers, in no order): a worker skips a batch it finds here, the
    # finalizer assembles exactly these.
    done_batches: list[int] = Field(default_factory=list)
    processed: int = 0
    succeeded: int = 0
    invalid: int = 0
    failed: int = 0
    # Rows repeating an earlier row's value: not charged (their status and enrichment are the first occurrence's).
    duplicates: int = 0
    credits_reserved: int = 0
    credits_used: int = 0
    credits_settled: bool = False
    result_key: str | None = None
    result_rows: int | None = None
    # When the result was written: it is kept `retention_days` from then (the bucket's lifecycle rule).
    result_at: str | None = None
    # The result's rows counted by verdict, line type, country...: functions/logic/summary.py (set with the result).
    summary: dict[str, dict[str, int]] | None = None
    # Set when a DELETE began purging the job: it reads as gone from then on, and nothing is added to it.
    purging_at: str | None = None
    error: str | None = None
    error_message: str | None = None


class Batch(_Model):
    """One SQS message of work: a contiguous run of data rows of one job, in input order."""

    job_id: str
    batch: int = Field(ge=0)
    first_row: int = Field(ge=0, description="0-based index of the first data row of this batch in the input")
    column_index: int = Field(ge=0)
    header: list[str]
    rows: list[list[str]]
    # A batch sent back to the queue because a provider's time budget ran out (functions/logic/processing.py):
    # how often, how many values were left unasked last time, and how many turns in a row asked nothing new.
    deferrals: int = Field(default=0, ge=0)
    unasked: int | None = None
    stalls: int = Field(default=0, ge=0)
    # Rows repeating an earlier row's value (functions/logic/duplicates.py): [row, first row, value], 0-based data
    # rows; the value to enrich is given when the first occurrence is in an earlier batch, else it is copied.
    duplicates: list[tuple[int, int, str | None]] = Field(default_factory=list)


class RowResult(_Model):
    """The enrichment of one input value."""

    status: RowStatus
    error: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    # The 1-based data row whose value this row repeats (its status and enrichment are that row's; not charged).
    duplicate_of: int | None = None


class BatchCounts(_Model):
    """What one batch adds to a job's counters."""

    processed: int = 0
    succeeded: int = 0
    invalid: int = 0
    failed: int = 0
    credits: int = 0
    duplicates: int = 0


class JobEvent(_Model):
    """Detail of the EventBridge event `bulk_job.<status>` sent when a job ends."""

    id: str
    account_id: str
    status: JobStatus
    type: str
    total_rows: int
    processed: int
    succeeded: int
    invalid: int
    failed: int
    credits_used: int
    duplicates: int = 0
    result_bucket: str | None
    result_key: str | None
    error: str | None = None
    completed_at: str | None
    summary: dict[str, dict[str, int]] | None = None


# --- the API's contract: request and response bodies (the OpenAPI document is generated from these) ---------------
class _Strict(_Model):
    model_config = ConfigDict(extra="forbid")


class ErrorResponse(_Model):
    """Every error: a machine-readable code, a human message, and details that depend on the code."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="machine-readable code (README's error table lists them all)")
    code: str = Field(description="the same code as `error` (the field the official Go client reads)")
    message: str = Field(description="what went wrong, for a person")


class HealthResponse(_Strict):
    """The service is ready."""

    status: Literal["ok"]


JOB_TYPE_MAX = 32
FILENAME_MAX = 255
COLUMN_MAX = 255
SOURCE_URL_MAX = 2048


class JobCreateRequest(_Strict):
    """A job whose file does not come in the request (JSON body of `POST /api/bulk-jobs`).

    Either `filename`: the answer carries a presigned S3 form (`upload`) to send the file to; or `url`: the service
    fetches the file from there itself.
    """

    type: str = Field(max_length=JOB_TYPE_MAX, description="email, phone, company, domain, ip or darkweb")
    filename: str | None = Field(
        default=None, min_length=1, max_length=FILENAME_MAX, description="the file's name, for a presigned upload"
    )
    url: str | None = Field(
        default=None,
        min_length=1,
        max_length=SOURCE_URL_MAX,
        description="an https URL of the CSV, fetched by the service (instead of `filename`)",
    )
    column: str | None = Field(default=None, max_length=COLUMN_MAX, description="header name or 1-based number")
    country: str | None = Field(
        default=None,
        max_length=2,
        description="phone jobs: the ISO 3166 alpha-2 region numbers without `+` are read in (after a row's own "
        "country column; default: the deployment's)",
    )
    country_column: str | None = Field(
        default=None,
        max_length=COLUMN_MAX,
        description="phone jobs: the column naming each row's country (header name or 1-based number); default: a "
        "column named like one (`country`, `country_code`, `region`, `land`, `pays`, ...)",
    )
    sheet: str | None = Field(
        default=None, max_length=COLUMN_MAX, description="an XLSX file's sheet to read, by name; default: the first"
    )


class UploadForm(_Strict):
    """A presigned S3 POST: send `multipart/form-data` to `url` with every field of `fields`, then the file as
    `file` (the last field). S3 refuses a file over the upload limit, or a form used after `expires_at`."""

    method: Literal["POST"]
    url: str
    fields: dict[str, str]
    expires_at: str


class JobCreatedResponse(_Strict):
    """A job was accepted."""

    id: str
    status: JobStatus
    type: str
    total_rows: int | None
    processed: int
    created_at: str
    upload: UploadForm | None = Field(default=None, description="presigned uploads only: where to send the file")


class VariantView(_Strict):
    """A form of the result: which row statuses and verdicts, which format, which delimiter; whether it can be
    downloaded."""

    name: str
    status: list[RowStatus]
    validity: list[Literal["valid", "risky", "invalid", "unknown"]] | None = Field(
        default=None, description="email jobs: the verdicts kept (null: every row)"
    )
    format: Literal["csv", "jsonl"]
    delimiter: Literal["comma", "semicolon", "tab", "pipe"] | None
    formula_guard: bool = Field(description="CSV cells carry the spreadsheet formula guard (`formula_guard=on`)")
    ready: bool
    rows: int | None


SUMMARY_DESCRIPTION = (
    "the result's rows counted once the result is assembled (null before): per dimension, each bucket's count; the "
    "counts of each dimension add up to the result's rows (`total_rows` for a completed job). email: `validity` "
    "(valid, risky, invalid, unknown); phone: `line_type` and `region`; ip: `country`; domain: `dns` and "
    "`public_suffix`; company: `country` and `website`; darkweb: `breached`. A row without a value is `unknown`."
)
SUMMARY_EXAMPLE = {"validity": {"valid": 812, "risky": 97, "invalid": 64, "unknown": 27}}


class JobStatusResponse(_Strict):
    """A job's status and progress."""

    id: str
    status: JobStatus
    type: str
    filename: str
    column: str | None
    country: str | None = Field(default=None, description="phone jobs: the job's `country` option")
    country_column: str | None = Field(default=None, description="phone jobs: the rows' country column, if any")
    total_rows: int | None
    processed: int
    succeeded: int
    invalid: int
    failed: int
    duplicates: int = Field(
        description="rows repeating an earlier row's value (the type's normalized value): same status and "
        "enrichment as the first occurrence, `duplicate_of` in the result, not charged"
    )
    percent: float
    eta_seconds: float | None
    credits_reserved: int
    credits_used: int
    created_at: str
    started_at: str | None
    completed_at: str | None
    result_ready: bool
    # `retentionDays` after the result was written; from then on the download answers 410 result_expired.
    result_expires_at: str | None
    error: str | None
    error_message: str | None
    upload_expires_at: str | None = Field(description="a presigned upload's job: until when its form may be used")
    split_bytes_read: int | None = Field(
        description="how far the file has been read; moves from the first second, before `total_rows` is known"
    )
    split_bytes_total: int | None = Field(description="the file's size, once its reading has started")
    summary: dict[str, dict[str, int]] | None = Field(
        default=None, description=SUMMARY_DESCRIPTION, examples=[SUMMARY_EXAMPLE]
    )
    # One job's status only (not the list): the result and each variant of it asked for so far.
    variants: list[VariantView] | None = None


class JobDeletedResponse(_Strict):
    """An ended job was purged: its files and items are gone, its ledger entries stay."""

    id: str
    status: Literal["deleted"]


class DetectedLayout(_Strict):
    """How the file would be read."""

    encoding: str
    delimiter: Literal["comma", "semicolon", "tab", "pipe"]
    has_header: bool
    column: str
    column_index: int = Field(ge=0, description="0-based; pass index + 1 as `column` to choose by number")


class PreviewRow(_Strict):
    """One of the first data rows, enriched as the job would enrich it (offline sources only)."""

    cells: list[str]
    value: str
    status: RowStatus
    error: str | None
    enrichment: dict[str, Any]


class JobPreviewResponse(_Strict):
    """What creating the job would detect, count and reserve; nothing was stored or charged."""

    filename: str
    type: str
    detected: DetectedLayout
    columns: list[str]
    format: Literal["csv", "gzip", "zip", "xlsx"] = Field(description="what the file is, by its content")
    sheet: str | None = Field(default=None, description="the workbook's sheet read (xlsx)")
    truncated: bool = Field(
        default=False,
        description="the preview read a head of the file (a `file_size` larger than the part sent, or more than "
        "1 MiB of content in a compressed file or workbook): `total_rows` counts the rows of that head",
    )
    estimated_total_rows: int | None = Field(
        default=None, description="for a head sent with `file_size`: the rows the whole file likely has"
    )
    total_rows: int
    credits_required: int
    balance: int
    rows: list[PreviewRow]


class JobListResponse(_Strict):
    """A page of the account's jobs, newest first."""

    jobs: list[JobStatusResponse]
    next_cursor: str | None


class LedgerEntry(_Strict):
    """One movement of the balance: `grant`, `reserve` (negative) or `refund`."""

    job_id: str | None
    request_id: str | None
    kind: str
    amount: int
    at: str


class CreditsResponse(_Strict):
    """The balance and a page of the ledger, newest first; every entry, page after page, sums to the balance."""

    balance: int
    entries: list[LedgerEntry]
    next_cursor: str | None = Field(description="give it as `cursor` for the next page; null on the last page")


WEBHOOK_URL_MAX = 2048
WEBHOOK_DESCRIPTION_MAX = 500
WEBHOOK_EVENTS_MAX = 10
ID_MAX = 64


class WebhookCreateRequest(_Strict):
    """A new endpoint."""

    url: str = Field(max_length=WEBHOOK_URL_MAX)
    events: list[str] | None = Field(default=None, max_length=WEBHOOK_EVENTS_MAX)
    description: str | None = Field(default=None, max_length=WEBHOOK_DESCRIPTION_MAX)


class WebhookUpdateRequest(_Strict):
    """Changes to an endpoint; fields left out stay as they are."""

    id: str = Field(max_length=ID_MAX)
    url: str | None = Field(default=None, max_length=WEBHOOK_URL_MAX)
    events: list[str] | None = Field(default=None, max_length=WEBHOOK_EVENTS_MAX)
    description: str | None = Field(default=None, max_length=WEBHOOK_DESCRIPTION_MAX)
    is_active: bool | None = None


class WebhookIdRequest(_Strict):
    """Names one endpoint."""

    id: str = Field(max_length=ID_MAX)


class WebhookResponse(_Strict):
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


class WebhookListResponse(_Strict):
    """The account's endpoints."""

    webhooks: list[WebhookResponse]


class WebhookDeletedResponse(_Strict):
    """An endpoint was removed."""

    id: str
    deleted: Literal[True]


class WebhookTestResponse(_Strict):
    """What the endpoint answered to a signed `webhook.test` event."""

    id: str
    webhook_id: str
    event_type: str
    success: bool
    response_status: int | None
    response_body: str | None
    error: str | None


class WebhookDelivery(_Model):
    """One delivery and its attempts."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    status: str | None = None
    attempts: int | None = None
    response_status: int | None = None
    response_body: str | None = None
    last_attempt_at: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


class DeliveriesResponse(_Strict):
    """An endpoint's last deliveries, newest first."""

    deliveries: list[WebhookDelivery]


class JobEventData(_Model):
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


class WebhookEvent(_Model):
    """A webhook delivery's body, signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`,
    `webhook-signature` headers)."""

    type: Literal["bulk_job.completed", "bulk_job.failed", "bulk_job.cancelled"]
    timestamp: str
    data: JobEventData
