"""The REST API's contract for jobs, credits and health: request and response bodies (the OpenAPI document is generated
from these)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from functions.models.jobs import JobStatus, Model, RowStatus


class Strict(Model):
    """A request or response body that refuses fields it does not name."""

    model_config = ConfigDict(extra="forbid")


class ErrorResponse(Model):
    """Every error: a machine-readable code, a human message, and details that depend on the code."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="machine-readable code (README's error table lists them all)")
    code: str = Field(description="the same code as `error` (the field the official Go client reads)")
    message: str = Field(description="what went wrong, for a person")


class HealthResponse(Strict):
    """The service is ready."""

    status: Literal["ok"]


JOB_TYPE_MAX = 32
FILENAME_MAX = 255
COLUMN_MAX = 255
SOURCE_URL_MAX = 2048


class JobCreateRequest(Strict):
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


class UploadForm(Strict):
    """A presigned S3 POST: send `multipart/form-data` to `url` with every field of `fields`, then the file as
    `file` (the last field). S3 refuses a file over the upload limit, or a form used after `expires_at`."""

    method: Literal["POST"]
    url: str
    fields: dict[str, str]
    expires_at: str


class JobCreatedResponse(Strict):
    """A job was accepted."""

    id: str
    status: JobStatus
    type: str
    total_rows: int | None
    processed: int
    created_at: str
    upload: UploadForm | None = Field(default=None, description="presigned uploads only: where to send the file")


class VariantView(Strict):
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


class JobStatusResponse(Strict):
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


class JobDeletedResponse(Strict):
    """An ended job was purged: its files and items are gone, its ledger entries stay."""

    id: str
    status: Literal["deleted"]


class DetectedLayout(Strict):
    """How the file would be read."""

    encoding: str
    delimiter: Literal["comma", "semicolon", "tab", "pipe"]
    has_header: bool
    column: str
    column_index: int = Field(ge=0, description="0-based; pass index + 1 as `column` to choose by number")


class PreviewRow(Strict):
    """One of the first data rows, enriched as the job would enrich it (offline sources only)."""

    cells: list[str]
    value: str
    status: RowStatus
    error: str | None
    enrichment: dict[str, Any]


class JobPreviewResponse(Strict):
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


class JobListResponse(Strict):
    """A page of the account's jobs, newest first."""

    jobs: list[JobStatusResponse]
    next_cursor: str | None


class LedgerEntry(Strict):
    """One movement of the balance: `grant`, `reserve` (negative) or `refund`."""

    job_id: str | None
    request_id: str | None
    kind: str
    amount: int
    at: str


class CreditsResponse(Strict):
    """The balance and a page of the ledger, newest first; every entry, page after page, sums to the balance."""

    balance: int
    entries: list[LedgerEntry]
    next_cursor: str | None = Field(description="give it as `cursor` for the next page; null on the last page")
