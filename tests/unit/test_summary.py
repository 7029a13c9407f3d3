"""The summary of a job: its result rows counted by verdict (emails), line type and region (phones), country (IPs)...,
by the finalizer from the very part files it assembles, so the counts add up to the result's rows."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from functions.enrich import enrich_values, result_columns
from functions.logic import finalize, results
from functions.logic.processing import part_key
from functions.logic.summary import VERDICTS, Tally, email_verdict, verdict_offset
from functions.models import Job, JobStatus, RowResult

EMAILS = [
    "ada@lovelace-labs.com",  # valid
    "info@lovelace-labs.com",  # risky: role account
    "someone@mailinator.com",  # risky: disposable
    "not an email",  # invalid
    "grace@hopper.invalidtld",  # unknown: not a public suffix
    "linus@kernel-dev.org",  # valid
]


def _part(job_type: str, rows: list[list[str]], values: list[str], delimiter: str = ",") -> bytes:
    row_results = enrich_values(job_type, values)
    return results.part_rows(rows, row_results, result_columns(job_type), len(rows[0]), delimiter)


def test_email_rows_are_counted_by_verdict_including_rows_that_have_none() -> None:
    # Given an email part with one row of each verdict, and a dead-lettered batch (error rows have no verdict)
    part = _part("email", [[e, "x"] for e in EMAILS], EMAILS)
    failed = [RowResult(status="error", error="batch_failed")] * 2
    dead = results.part_rows([["a@b.com", "y"], ["c@d.com", "z"]], failed, result_columns("email"), 2)
    # When both are counted
    tally = Tally("email")
    tally.add_part(part, ",")
    tally.add_part(dead, ",")
    # Then each verdict has its rows, the error rows are unknown, and the counts add up to the rows
    summary = tally.summary()
    assert summary == {"validity": {"valid": 2, "risky": 2, "invalid": 1, "unknown": 3}}
    assert list(summary["validity"]) == list(VERDICTS)
    assert sum(summary["validity"].values()) == tally.rows == len(EMAILS) + 2


def test_the_verdict_is_found_from_the_end_whatever_the_input_width_and_names() -> None:
    # Given an input that has a `validity` column of its own and rows of different widths
    part = _part("email", [["validity", e, "", "extra"] for e in EMAILS[:2]], EMAILS[:2], ";")
    rows = list(csv.reader(io.StringIO(part.decode()), delimiter=";"))
    offset = verdict_offset("email")
    # Then the offset reads the enrichment's validity, not the customer's cell
    assert offset is not None and [email_verdict(r[offset]) for r in rows] == ["valid", "risky"]
    assert verdict_offset("phone") is None


@pytest.mark.parametrize(
    ("job_type", "values", "expected"),
    [
        (
            "phone",
            ["+49 30 1234567", "+49 151 23456789", "+1 212 555 0100", "not a phone"],
            {"line_type": {"fixed_line": 1, "fixed_line_or_mobile": 1, "mobile": 1, "unknown": 1}},
        ),
        (
            "ip",
            ["8.8.8.8", "10.0.0.1", "not an ip"],
            {"country": {"US": 1, "unknown": 2}},
        ),
        ("darkweb", ["ada@example.org"], {"breached": {"unknown": 1}}),
    ],
)
def test_other_types_are_counted_by_what_fits_them(
    job_type: str, values: list[str], expected: dict[str, dict[str, int]]
) -> None:
    # Given a part of that type
    tally = Tally(job_type)
    tally.add_part(_part(job_type, [[v] for v in values], values), ",")
    summary = tally.summary()
    # Then every dimension puts every row in one bucket
    for dimension, counts in expected.items():
        assert summary[dimension] == counts
    assert all(sum(counts.values()) == len(values) for counts in summary.values())


def test_phones_are_counted_by_region_most_frequent_first() -> None:
    values = ["+49 30 1234567", "+49 89 1234567", "+33 1 42 68 53 00", "nope"]
    tally = Tally("phone")
    tally.add_part(_part("phone", [[v] for v in values], values), ",")
    assert list(tally.summary()["region"].items()) == [("DE", 2), ("FR", 1), ("unknown", 1)]


# --- the finalizer counts what it assembles ------------------------------------------------------------------------


class _Writer:
    def __init__(self, sink: dict[str, bytes], key: str, large: set[str]) -> None:
        self.sink, self.key, self.large, self.data = sink, key, large, bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def append_objects(self, keys: Iterable[str], observe: Callable[[str, bytes | None], None] | None = None) -> None:
        for key in keys:
            # A "large" object is copied by S3: its bytes are not handed to the observer
            if observe is not None:
                observe(key, None if key in self.large else self.sink[key])
            self.data += self.sink[key]

    def close(self) -> None:
        self.sink[self.key] = bytes(self.data)

    def abort(self) -> None:
        pass


class _Blobs:
    bucket = "b"

    def __init__(self, objects: dict[str, bytes], large: set[str]) -> None:
        self.objects, self.large = objects, large

    def head(self, key: str) -> dict[str, Any] | None:
        return {"ContentLength": len(self.objects[key])} if key in self.objects else None

    def stream(self, key: str) -> Iterator[bytes]:
        yield self.objects[key]

    def writer(self, key: str, content_type: str = "text/csv") -> _Writer:
        return _Writer(self.objects, key, self.large)

    def purge(self, prefix: str, *, exact: bool = False) -> int:
        return 0


class _Store:
    def __init__(self, job: Job) -> None:
        self.job = job
        self.recorded: dict[str, dict[str, int]] | None = None

    def get_job(self, job_id: str) -> Job | None:
        return self.job

    def set_status(self, job_id: str, status: JobStatus, **_: Any) -> Job | None:
        return None

    def record_result(
        self, job_id: str, result_key: str, result_rows: int, now: str, summary: dict[str, dict[str, int]]
    ) -> Job:
        self.recorded = summary
        self.job = self.job.model_copy(update={"result_key": result_key, "summary": summary})
        return self.job


@pytest.mark.parametrize("max_width", [2, 4])
def test_the_finalizer_records_the_summary_of_the_rows_it_assembled(max_width: int) -> None:
    # Given three counted batches, one of them large enough for S3 to copy it, and (max_width 4) rows wider than the
    # header, which makes the finalizer re-pad every row instead of concatenating the parts
    job = Job(
        id="job_s",
        account_id="acct",
        type="email",
        status=JobStatus.PROCESSING,
        source_key="k",
        created_at="2026-01-01T00:00:00Z",
        header=["email", "note"],
        max_width=max_width,
        done_batches=[0, 1, 2],
        processed=len(EMAILS) * 3,
        delimiter=",",
    )
    objects = {part_key(job.id, n): _part("email", [[e, str(n)] for e in EMAILS], EMAILS) for n in range(3)}
    store, blobs = _Store(job), _Blobs(objects, large={part_key(job.id, 1)})
    # When the result is assembled
    finalize.assemble_result(job.id, store=store, blobs=blobs)
    # Then the summary counts every row of the result once, by its verdict
    assert store.recorded == {"validity": {"valid": 6, "risky": 6, "invalid": 3, "unknown": 3}}
    result = objects[finalize.result_key(job)].decode("utf-8-sig")
    validity = [row["validity"] for row in csv.DictReader(io.StringIO(result))]
    assert {v: validity.count(v) for v in VERDICTS} == store.recorded["validity"]


def test_a_failed_job_with_no_rows_publishes_no_summary() -> None:
    # Given a job that failed before any row, whose (empty) result was recorded with an empty summary
    job = Job(
        id="job_f",
        account_id="acct",
        type="email",
        status=JobStatus.FAILED,
        source_key="k",
        created_at="2026-01-01T00:00:00Z",
        result_key="results/acct/job_f.csv",
        summary={"validity": dict.fromkeys(VERDICTS, 0)},
    )
    sent: list[dict[str, Any]] = []

    class Bus:
        def put(self, detail_type: str, detail: dict[str, Any]) -> None:
            sent.append(detail)

    finalize.publish(job, Bus(), "bucket")
    # Then the event offers neither a result nor a summary of one
    assert sent[0]["summary"] is None and sent[0]["result_key"] is None
