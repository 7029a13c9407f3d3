"""The splitter cuts a file into work messages that SQS accepts, whatever the shape of the rows."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.adapters.blobs import OpenedObject
from functions.adapters.messaging import MAX_MESSAGE_BYTES
from functions.errors import InputError, InsufficientCreditsError
from functions.logic import csv_input, splitting
from functions.models import Batch, Job, JobStatus, StoredLayout
from tests.fakes import RecordingFinalizer

LIMITS = splitting.SplitLimits(
    rows_per_batch=1000,
    max_batch_bytes=200_000,
    max_rows=100_000,
    lease_seconds=60,
    max_message_bytes=MAX_MESSAGE_BYTES,
)


def cut(data: bytes, limits: splitting.SplitLimits = LIMITS) -> list[splitting.WorkMessage]:
    layout = csv_input.sniff(data[: csv_input.SNIFF_BYTES], "email")
    return list(splitting.batches(csv_input.iter_rows([data], layout), "job_x", layout, limits))


@pytest.mark.parametrize(
    "note",
    [
        pytest.param("lorem ipsum dolor sit amet " * 11, id="ascii-300-bytes"),
        pytest.param("日本語のメモ" * 50, id="cjk-3-bytes-a-char"),
        pytest.param('"quoted" \\ back\\slash ' * 12, id="json-escapes"),
        pytest.param("\U0001f600" * 300, id="emoji-4-bytes-a-char"),
    ],
)
def test_every_message_fits_sqs_in_bytes_and_holds_every_row_once_in_order(note: str) -> None:
    # Given 10,000 rows of an address and a long note (the 3 MB file, and harder encodings of it)
    lines = ["email,note"] + [f'user{i}@example.com,"{note.replace(chr(34), chr(34) * 2)}"' for i in range(10_000)]
    data = "\n".join(lines).encode()

    # When it is cut into messages
    messages = cut(data)

    # Then no message is over the per-message limit in UTF-8 bytes, as SQS counts
    assert all(len(m.body.encode()) <= MAX_MESSAGE_BYTES for m in messages)
    # And the body is the batch, numbered in order, with every row once in input order
    batches = [Batch.model_validate_json(m.body) for m in messages]
    assert [b.batch for b in batches] == list(range(len(batches)))
    rows = [row for b in batches for row in b.rows]
    assert [r[0] for r in rows] == [f"user{i}@example.com" for i in range(10_000)]
    assert all(b.first_row == sum(len(p.rows) for p in batches[: b.batch]) for b in batches)


def test_a_single_row_too_big_for_any_message_is_an_input_error() -> None:
    # Given a row whose JSON is over the message limit although its text is under the row limit (control
    # characters are six bytes each in JSON)
    cell = "\x01" * 30_000
    normal = "".join(f"user{i}@example.com,a,b\n" for i in range(5_000))  # the head looks like any CSV
    data = ("email,a,b\n" + normal + f"a@example.com,{cell},{cell}\n").encode()

    # When it is cut
    with pytest.raises(InputError) as caught:
        cut(data)

    # Then the job fails with a code that says so, instead of a message SQS refuses
    assert caught.value.code == "row_too_large"


def test_batch_bodies_are_the_json_the_worker_reads() -> None:
    # Given a small file
    messages = cut(b"email\na@example.com\nb@example.com\n")

    # Then each body parses back to its batch
    assert len(messages) == 1
    assert json.loads(messages[0].body)["rows"] == [["a@example.com"], ["b@example.com"]]
    assert messages[0].batch.rows == [["a@example.com"], ["b@example.com"]]


# --- split_job: the file is sniffed once, counted once and reserved for before any work ---------------------------


class SplitStore:
    """The jobs table as the splitter sees it through the job and credit stores, in memory; records what was written
    (a reservation writes the job item too)."""

    def __init__(self, job: Job, credits: int = 1_000_000) -> None:
        self.job = job
        self.credits = credits
        self.layouts: list[str] = []
        self.progress: list[tuple[int, int | None]] = []
        self.reserved: list[int] = []

    def get_job(self, job_id: str) -> Job | None:
        return self.job

    def claim_split(self, job_id: str, now: str, lease_expired_before: str) -> Job | None:
        self.job.status = JobStatus.PROCESSING
        return self.job.model_copy()

    def record_layout(self, job_id: str, header: list[str], column: str, layout: StoredLayout) -> None:
        self.layouts.append(column)
        self.job.layout, self.job.header, self.job.detected_column = layout, header, column

    def record_split_progress(self, job_id: str, bytes_read: int, bytes_total: int | None) -> None:
        self.progress.append((bytes_read, bytes_total))

    def reserve_for_job(self, job: Job, rows: int, now: str) -> None:
        if rows > self.credits:
            raise InsufficientCreditsError("short", required=rows, balance=self.credits)
        self.reserved.append(rows)
        self.job.total_rows = self.job.credits_reserved = rows

    def finish_split(
        self, job_id: str, total_rows: int, total_batches: int, header: list[str], max_width: int
    ) -> Job | None:
        self.job.total_rows, self.job.total_batches = total_rows, total_batches
        return self.job

    def set_status(self, job_id: str, status: JobStatus, **kwargs: Any) -> Job | None:
        self.job.status, self.job.error = status, kwargs.get("error")
        return self.job

    def account_credits(self, account_id: str) -> int | None:
        return self.credits

    def put_new_job(self, job: Job) -> bool:
        return True


class Bucket:
    """Objects in memory; a file can be replaced between two reads, as a second presigned upload would."""

    def __init__(self, data: bytes, replaced_by: bytes | None = None) -> None:
        self.data, self.replaced_by = data, replaced_by
        self.reads = 0

    def open(self, key: str, if_match: str | None = None) -> OpenedObject:
        self.reads += 1
        if self.reads > 1 and self.replaced_by is not None:
            self.data = self.replaced_by
        etag = str(hash(self.data))
        if if_match is not None and if_match != etag:
            raise InputError("replaced", code="upload_changed")
        chunks = [self.data[i : i + 1000] for i in range(0, len(self.data), 1000)]
        return OpenedObject(len(self.data), etag, iter(chunks))

    def put(self, key: str, body: bytes, **kwargs: Any) -> None:
        raise AssertionError("nothing is written")

    def copy(self, source_key: str, dest_key: str) -> None:
        raise AssertionError("nothing is copied")

    def delete(self, key: str) -> None:
        raise AssertionError("nothing is deleted")


class Sent:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send(self, bodies: list[str]) -> None:
        self.bodies += bodies


def uncounted(**fields: Any) -> Job:
    base = {
        "id": "job_x",
        "account_id": "a",
        "type": "email",
        "status": JobStatus.AWAITING_UPLOAD,
        "source_key": "uploads/a/job_x.csv",
        "created_at": "2026-01-01T00:00:00.000Z",
    }
    return Job.model_validate({**base, **fields})


def split(store: SplitStore, bucket: Bucket, limits: splitting.SplitLimits = LIMITS) -> tuple[Job | None, Sent]:
    sent = Sent()
    result = splitting.split_job(
        store.job, store=store, credits=store, blobs=bucket, queue=sent, finalizer=RecordingFinalizer(), limits=limits
    )
    return result, sent


def test_an_uncounted_file_is_sniffed_once_counted_and_reserved_before_any_work() -> None:
    # Given a presigned upload's file of 2,500 rows, not counted by anyone yet
    data = b"Name,Email\r\n" + b"".join(b"P%d,user%d@example.com\r\n" % (i, i) for i in range(2_500))
    store, bucket = SplitStore(uncounted()), Bucket(data)
    # When it is split
    finished, sent = split(store, bucket)
    # Then the layout was detected once and kept, the rows counted and reserved once, then the batches sent
    assert store.layouts == ["Email"] and store.reserved == [2_500]
    assert finished is not None and (finished.total_rows, finished.total_batches) == (2_500, 3)
    rows = [row for body in sent.bodies for row in Batch.model_validate_json(body).rows]
    assert [r[0] for r in rows] == [f"P{i}" for i in range(2_500)]
    # And how far the file was read was recorded from the first chunk on, ending at its size
    assert store.progress[0][1] == len(data) and store.progress[-1] == (len(data), len(data))


def test_a_file_counted_by_the_api_is_not_sniffed_or_counted_again() -> None:
    # Given a form upload whose layout and count the API stored
    data = b"Name,Email\r\na,a@example.com\r\nb,b@example.com\r\n"
    job = uncounted(
        status=JobStatus.QUEUED,
        total_rows=2,
        credits_reserved=2,
        layout=StoredLayout(encoding="utf-8", delimiter=",", has_header=True, column_index=1),
        header=["Name", "Email"],
        detected_column="Email",
    )
    store, bucket = SplitStore(job), Bucket(data)
    finished, sent = split(store, bucket)
    # Then the one read splits it, with the stored layout
    assert bucket.reads == 1 and store.layouts == [] and store.reserved == []
    assert finished is not None and finished.total_batches == 1
    assert Batch.model_validate_json(sent.bodies[0]).column_index == 1


def test_a_file_over_the_balance_queues_nothing() -> None:
    store = SplitStore(uncounted(), credits=10)
    finished, sent = split(store, Bucket(email_rows(11)))
    assert finished is not None and (finished.status, finished.error) == (JobStatus.FAILED, "insufficient_credits")
    assert sent.bodies == [] and store.reserved == []


def test_a_file_replaced_between_the_count_and_the_split_fails_the_job() -> None:
    store = SplitStore(uncounted())
    finished, sent = split(store, Bucket(email_rows(5), replaced_by=email_rows(500)))
    assert finished is not None and (finished.status, finished.error) == (JobStatus.FAILED, "upload_changed")
    assert sent.bodies == []


def test_a_million_rows_make_at_most_500_batches_however_small_the_batch_size_is() -> None:
    small = splitting.SplitLimits(
        rows_per_batch=25, max_batch_bytes=200_000, max_rows=1_000_000, lease_seconds=60, max_message_bytes=262_144
    )
    assert small.for_rows(1_000_000).rows_per_batch == 2_000
    assert small.for_rows(10_000).rows_per_batch == 25
    assert -(-1_000_000 // small.for_rows(1_000_000).rows_per_batch) <= splitting.MAX_ROW_BATCHES
    # And the markers of those batches plus the byte cuts of a 1 GiB file (about 5,400 more, numbers of at most 4
    # digits: 4 bytes each in a DynamoDB number set) stay far inside DynamoDB's 400 KB item limit
    assert (splitting.MAX_ROW_BATCHES + 1024**3 // 200_000) * 4 < 25 * 1024


def email_rows(n: int) -> bytes:
    return b"email\r\n" + b"".join(b"u%d@example.com\r\n" % i for i in range(n))
