"""The domain: a job, its status and layout, its batches and their row results, the event it ends with."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JOB_TYPES: tuple[str, ...] = ("email", "phone", "company", "domain", "ip", "darkweb")

RowStatus = Literal["ok", "invalid", "error"]


class Model(BaseModel):
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


class StoredLayout(Model):
    """How a job's CSV is read (functions/logic/csv_input.py CsvLayout, less the header kept on the job)."""

    encoding: str
    delimiter: str
    has_header: bool
    column_index: int = Field(ge=0)


class Job(Model):
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


class Batch(Model):
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


class RowResult(Model):
    """The enrichment of one input value."""

    status: RowStatus
    error: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    # The 1-based data row whose value this row repeats (its status and enrichment are that row's; not charged).
    duplicate_of: int | None = None


class BatchCounts(Model):
    """What one batch adds to a job's counters."""

    processed: int = 0
    succeeded: int = 0
    invalid: int = 0
    failed: int = 0
    credits: int = 0
    duplicates: int = 0


class JobEvent(Model):
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
