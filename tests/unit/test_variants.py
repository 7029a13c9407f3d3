"""Result variants: parameters, names, the streaming transformation (a million rows in flat memory), the build."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from functions.errors import GoneError, InputError
from functions.logic import downloads, results, variants
from functions.logic.variants import Variant
from functions.models import Job, JobStatus

JOB = "job_vvvvvvvvvvvvvvvvvvvv"
RESULT = f"results/acct_a/{JOB}.csv"


def job(**fields: Any) -> Job:
    values: dict[str, Any] = {
        "id": JOB,
        "account_id": "acct_a",
        "type": "email",
        "status": JobStatus.COMPLETED,
        "source_key": f"uploads/acct_a/{JOB}.csv",
        "filename": "leads.csv",
        "created_at": "2030-01-01T00:00:00.000Z",
        "completed_at": "2030-01-01T00:01:00.000Z",
        "result_at": "2030-01-01T00:01:00.000Z",
        "result_key": RESULT,
        "result_rows": 4,
        "processed": 4,
        "delimiter": ";",
    }
    values.update(fields)
    return Job.model_validate(values)


def result_csv(delimiter: str = ";") -> bytes:
    header = ["Name", "Email", "validity", "duplicate_of", "status", "error"]
    rows = [
        ["Zoë", "zoe@example.de", "valid", "ok", ""],
        ["Bad; one", "not-an-email", "invalid", "invalid", "invalid_email"],
        ["-cmd", "x@example.de", "", "error", "provider_timeout"],
        ["Line\nbreak", "lb@example.de", "valid", "ok", ""],
    ]
    head = results.header_bytes(header, delimiter)
    body = b"".join(
        results.part_rows(
            [r[:2] for r in rows],
            [results_row(r) for r in rows],
            ["validity"],
            2,
            delimiter,
        )
        for _ in [0]
    )
    return head + body


def results_row(row: list[str]) -> Any:
    from functions.models import RowResult

    return RowResult(status=row[3], error=row[4] or None, data={"validity": row[2] or None})


def run(variant: Variant, data: bytes, delimiter: str = ";", piece: int = 7) -> tuple[bytes, variants.Built]:
    built = variants.Built()
    chunks = [data[i : i + piece] for i in range(0, len(data), piece)]  # splits multi-byte letters and CRLFs
    out = b"".join(variants.transform(chunks, delimiter, variant, built))
    return out, built


# --- parameters and names -----------------------------------------------------------------------------------------


def test_no_parameters_mean_the_result_as_it_is_in_the_input_delimiter() -> None:
    variant = variants.parse(job(), None, None, None)
    assert variant == variants.base_variant(job()) and variant.name == "all.semicolon.csv"


@pytest.mark.parametrize(
    ("status", "fmt", "delimiter", "name"),
    [
        ("invalid,ok", None, None, "ok-invalid.semicolon.csv"),
        ("ok", "csv", "comma", "ok.comma.csv"),
        ("error", "jsonl", None, "error.jsonl"),
        (None, "jsonl", None, "all.jsonl"),
        ("OK, error", "CSV", "Tab", "ok-error.tab.csv"),
    ],
)
def test_parameters_name_one_variant_whatever_their_order_or_case(
    status: str | None, fmt: str | None, delimiter: str | None, name: str
) -> None:
    variant = variants.parse(job(), status, fmt, delimiter)
    assert variant.name == name and Variant.from_name(name) == variant


@pytest.mark.parametrize(
    ("status", "fmt", "delimiter", "parameter"),
    [
        ("ok,valid", None, None, "status"),
        (",", None, None, "status"),
        (None, "xls", None, "format"),
        (None, "xlsx", "tab", "delimiter"),
        (None, None, "colon", "delimiter"),
        (None, "jsonl", "tab", "delimiter"),
    ],
)
def test_unknown_values_are_400_invalid_parameter_naming_the_parameter(
    status: str | None, fmt: str | None, delimiter: str | None, parameter: str
) -> None:
    with pytest.raises(InputError) as err:
        variants.parse(job(), status, fmt, delimiter)
    assert (err.value.status_code, err.value.code, err.value.details["parameter"]) == (
        400,
        "invalid_parameter",
        parameter,
    )
    assert err.value.details["allowed"]


@pytest.mark.parametrize(
    ("status", "validity", "fmt", "name", "segment"),
    [
        (None, "valid", None, "all+valid.semicolon.csv", "valid"),
        (None, "Risky, VALID", "jsonl", "all+valid-risky.jsonl", "valid-risky"),
        ("ok", "unknown,invalid", None, "ok+invalid-unknown.semicolon.csv", "ok.invalid-unknown"),
        (None, "valid,risky,invalid,unknown", None, "all.semicolon.csv", ""),
        ("ok", None, None, "ok.semicolon.csv", "ok"),
    ],
)
def test_a_validity_filter_names_its_variant_and_its_file(
    status: str | None, validity: str, fmt: str | None, name: str, segment: str
) -> None:
    # Given a download asking for some verdicts (and maybe some statuses)
    variant = variants.parse(job(), status, fmt, None, validity)
    # Then the variant has one name whatever the order or case, read back the same, and says its segment
    assert variant.name == name and Variant.from_name(name) == variant and variant.segment == segment
    extension = variant.format
    expected = f"leads.enriched.{segment}.{extension}" if segment else f"leads.enriched.{extension}"
    assert downloads.download_name("leads.csv", JOB, extension, variant.segment) == expected


@pytest.mark.parametrize(
    ("job_type", "status", "validity", "message"),
    [
        ("email", None, "valid,maybe", "valid, risky, invalid, unknown"),
        ("email", None, ",", "valid, risky, invalid, unknown"),
        ("phone", None, "valid", "email jobs"),
        ("email", "valid", None, "validity="),
    ],
)
def test_a_bad_validity_or_a_verdict_asked_as_a_status_is_400_saying_what_to_ask(
    job_type: str, status: str | None, validity: str | None, message: str
) -> None:
    with pytest.raises(InputError) as err:
        variants.parse(job(type=job_type), status, None, None, validity)
    assert err.value.code == "invalid_parameter" and message in err.value.message
    assert err.value.details["parameter"] == ("validity" if validity else "status")


def test_segments_by_verdict_partition_the_rows() -> None:
    # Given an email result whose rows have each verdict, an error row (no verdict) and a customer column "validity"
    data = result_csv()
    offset = -4  # validity, duplicate_of, status, error
    segments = {
        verdict: run_filtered(Variant(variants.STATUSES, "csv", "semicolon", (verdict,)), data, offset)
        for verdict in ("valid", "risky", "invalid", "unknown")
    }
    # Then every row is in exactly one segment, in its input order
    assert [len(rows) for rows in segments.values()] == [2, 0, 1, 1]
    everything = [r for rows in segments.values() for r in rows]
    emails = ["zoe@example.de", "not-an-email", "x@example.de", "lb@example.de"]
    assert sorted(r[1] for r in everything) == sorted(emails)
    assert segments["unknown"][0][-2] == "error"
    with pytest.raises(ValueError, match="validity cell"):
        run_filtered(Variant(variants.STATUSES, "csv", "semicolon", ("valid",)), data, None)


def run_filtered(variant: Variant, data: bytes, offset: int | None) -> list[list[str]]:
    built = variants.Built()
    out = b"".join(variants.transform([data], ";", variant, built, offset)).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(out, newline=""), delimiter=";"))[1:]
    assert built.rows == len(rows)
    return rows


# --- the transformation -------------------------------------------------------------------------------------------


def test_a_status_filter_keeps_only_those_rows_in_order_with_the_header() -> None:
    out, built = run(Variant(("ok",), "csv", "semicolon"), result_csv())
    assert out.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(out.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert rows[0] == ["Name", "Email", "validity", "duplicate_of", "status", "error"]
    assert [r[0] for r in rows[1:]] == ["Zoë", "Line\nbreak"] and built.rows == 2 and built.size == len(out)


def test_another_delimiter_rewrites_every_row_quoting_where_needed() -> None:
    out, _ = run(Variant(variants.STATUSES, "csv", "comma"), result_csv())
    rows = list(csv.reader(io.StringIO(out.decode("utf-8-sig"), newline="")))
    assert [r[0] for r in rows] == ["Name", "Zoë", "Bad; one", "'-cmd", "Line\nbreak"]
    assert rows[2][-2:] == ["invalid", "invalid_email"]


def test_json_lines_give_one_object_per_row_without_the_spreadsheet_guard() -> None:
    out, built = run(Variant(("invalid", "error"), "jsonl", None), result_csv())
    objects = [json.loads(line) for line in out.decode("utf-8").splitlines()]
    assert objects == [
        {
            "Name": "Bad; one",
            "Email": "not-an-email",
            "validity": "invalid",
            "duplicate_of": "",
            "status": "invalid",
            "error": "invalid_email",
        },
        {
            "Name": "-cmd",
            "Email": "x@example.de",
            "validity": "",
            "duplicate_of": "",
            "status": "error",
            "error": "provider_timeout",
        },
    ]
    assert not out.startswith(b"\xef\xbb\xbf") and built.rows == 2


def _million_row_jsonl(hold: bool = False) -> tuple[int, int, int, int, float]:
    """Run in a new process (a heap of its own): the invalid rows of a 1,000,000-row result taken out as JSON Lines,
    read in S3-sized chunks (about 40 MB in all, never held whole). Returns the rows and bytes built, the bytes
    written, how far the process's resident memory rose above where it was before (its high-water mark, VmHWM, reset
    first) and the seconds taken. `hold` keeps every piece written, as a transformation that is not flat would."""

    def result() -> Iterator[bytes]:
        yield results.header_bytes(["Email", "status", "error"], ",")
        block = []
        for i in range(1_000_000):
            block.append(f"user{i}@example.com,{'ok' if i % 4 else 'invalid'},\r\n")
            if len(block) == 5000:
                yield "".join(block).encode()
                block = []

    def status_kb(field: str) -> int:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
        return int(line.split()[1])

    built, written, held = variants.Built(), 0, []
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark starts again from what is resident now
    before = status_kb("VmRSS")
    started = time.monotonic()
    for data in variants.transform(result(), ",", Variant(("invalid",), "jsonl", None), built):
        written += len(data)
        if hold:
            held.append(data)
    elapsed = time.monotonic() - started
    return built.rows, built.size, written, (status_kb("VmHWM") - before) * 1024, elapsed


def _in_new_process(hold: bool) -> tuple[int, int, int, int, float]:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_million_row_jsonl, hold).result(timeout=600)


@pytest.mark.slow  # a million rows through the builder: a few seconds alone
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc")
def test_a_million_row_result_streams_in_flat_memory() -> None:
    # Given a 1,000,000-row result read in S3-sized chunks (about 40 MB), never held whole
    # When the invalid rows are taken out as JSON Lines, in a process whose memory is watched
    rows, size, written, peak, elapsed = _in_new_process(hold=False)
    # Then every fourth row is there, and memory never held more than a few pieces of it
    assert rows == 250_000 and size == written > 10_000_000
    assert peak < 16 * 1024 * 1024, peak
    assert elapsed < 120
    # (The watch can tell: the same transformation keeping what it wrote rises past the limit.)
    assert _in_new_process(hold=True)[3] > 16 * 1024 * 1024


# --- the build and the download -----------------------------------------------------------------------------------


class Writer:
    def __init__(self, bucket: Bucket, key: str) -> None:
        self.bucket, self.key, self.data = bucket, key, bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def close(self) -> None:
        self.bucket.objects[self.key] = bytes(self.data)

    def abort(self) -> None:
        pass


class Bucket:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = dict(objects)
        self.streamed = 0

    def head(self, key: str) -> dict[str, Any] | None:
        return {"ContentLength": len(self.objects[key])} if key in self.objects else None

    def get_if_exists(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def get_if_small(self, key: str, max_bytes: int) -> tuple[int, bytes | None] | None:
        if key not in self.objects:
            return None
        data = self.objects[key]
        return len(data), (data if len(data) <= max_bytes else None)

    def presigned_get(self, key: str, expires: int, disposition: str) -> str:
        return f"https://s3.example/{key}"

    def stream(self, key: str) -> Iterator[bytes]:
        self.streamed += 1
        yield self.objects[key]

    def writer(self, key: str, content_type: str = "text/csv") -> Writer:
        return Writer(self, key)

    def purge(self, prefix: str, *, exact: bool = False) -> int:
        gone = [k for k in self.objects if (k == prefix if exact else k.startswith(prefix))]
        for key in gone:
            del self.objects[key]
        return len(gone)


class Store:
    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = {j.id: j for j in jobs}
        self.records: dict[str, dict[str, Any]] = {}

    def get_job(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def get_variant(self, job_id: str, name: str) -> dict[str, Any] | None:
        return self.records.get(name)

    def request_variant(self, job_id: str, name: str, now: str, stale_before: str) -> bool:
        record = self.records.get(name)
        if record is not None and (record["state"] == "ready" or record["at"] >= stale_before):
            return False
        self.records[name] = {"name": name, "state": "building", "at": now}
        return True

    def record_variant(self, job_id: str, name: str, *, key: str, rows: int, size: int, now: str) -> bool:
        if job_id not in self.jobs or self.jobs[job_id].purging_at:
            return False
        self.records[name] = {"name": name, "state": "ready", "at": now, "key": key, "rows": rows, "size": size}
        return True


class Queue:
    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []

    def send(self, bodies: list[str]) -> None:
        self.sent += [json.loads(b) for b in bodies]


NOW = datetime(2030, 1, 2, tzinfo=UTC)


def ask(store: Store, bucket: Bucket, queue: Queue, variant: Variant) -> downloads.Delivery | downloads.Pending:
    return downloads.download(
        store.jobs[JOB], variant, store=store, blobs=bucket, queue=queue, now=NOW, retention_days=30,
        inline_max=1_000_000, url_ttl_seconds=60,
    )  # fmt: skip


def test_a_variant_is_built_once_then_served_and_listed() -> None:
    store, bucket, queue = Store([job()]), Bucket({RESULT: result_csv()}), Queue()
    wanted = Variant(("ok",), "jsonl", None)
    # When it is asked for twice before it exists
    first, second = ask(store, bucket, queue, wanted), ask(store, bucket, queue, wanted)
    # Then both answers say to come back later, and one build was asked for
    assert isinstance(first, downloads.Pending) and isinstance(second, downloads.Pending) and first.retry_after >= 1
    assert queue.sent == [{"job_id": JOB, "variant": "ok.jsonl"}]
    # When the build runs (and its message is delivered twice)
    assert variants.build(JOB, "ok.jsonl", store=store, blobs=bucket) == "built"
    assert variants.build(JOB, "ok.jsonl", store=store, blobs=bucket) == "exists" and bucket.streamed == 1
    # Then it is served under the upload's name and its segment, kept next to the result
    ready = ask(store, bucket, queue, wanted)
    assert isinstance(ready, downloads.Delivery) and ready.filename == "leads.enriched.ok.jsonl"
    assert bucket.objects[f"results/acct_a/{JOB}/ok.jsonl"] == ready.body
    assert ready.content_type.startswith("application/x-ndjson")
    # And the status lists the result itself and this variant
    listed = downloads.variants_view(store.jobs[JOB], list(store.records.values()), result_ready=True)
    assert [(v["name"], v["ready"], v["rows"]) for v in listed] == [
        ("all.semicolon.csv", True, 4),
        ("ok.jsonl", True, 2),
    ]


def test_the_default_download_needs_no_build() -> None:
    store, bucket, queue = Store([job()]), Bucket({RESULT: result_csv()}), Queue()
    delivered = ask(store, bucket, queue, variants.parse(store.jobs[JOB], None, None, "semicolon"))
    assert isinstance(delivered, downloads.Delivery) and delivered.body == result_csv() and queue.sent == []


def test_a_variant_of_an_expired_result_is_410_not_a_build() -> None:
    store, bucket, queue = Store([job()]), Bucket({}), Queue()
    with pytest.raises(downloads.GoneError):
        ask(store, bucket, queue, Variant(("ok",), "csv", "comma"))
    assert queue.sent == []


def test_a_variant_finished_after_its_job_was_purged_is_deleted_again() -> None:
    store, bucket = Store([job(purging_at=None)]), Bucket({RESULT: result_csv()})
    original = store.record_variant
    store.record_variant = lambda *a, **k: False  # type: ignore[method-assign]
    assert variants.build(JOB, "ok.comma.csv", store=store, blobs=bucket) == "no_job"
    assert set(bucket.objects) == {RESULT}
    store.record_variant = original  # type: ignore[method-assign]


def test_a_variant_lives_exactly_as_long_as_its_result_and_is_deleted_with_it() -> None:
    # Given a built variant, then the result removed (what the bucket's retention rule does on its day)
    store, bucket, queue = Store([job()]), Bucket({RESULT: result_csv()}), Queue()
    wanted = Variant(("ok",), "jsonl", None)
    ask(store, bucket, queue, wanted)
    assert variants.build(JOB, "ok.jsonl", store=store, blobs=bucket) == "built"
    del bucket.objects[RESULT]
    # When the variant is asked for
    with pytest.raises(GoneError) as err:
        ask(store, bucket, queue, wanted)
    # Then it answers 410 like its result, and its file is deleted with it
    assert err.value.code == "result_expired"
    assert not [k for k in bucket.objects if k.startswith(f"results/acct_a/{JOB}/")]
    # And past the result's date every variant answers 410 even while its files are still there
    store2, bucket2 = Store([job(result_at="2029-11-01T00:00:00.000Z")]), Bucket({RESULT: result_csv()})
    bucket2.objects[f"results/acct_a/{JOB}/ok.jsonl"] = b"{}"
    with pytest.raises(GoneError):
        ask(store2, bucket2, queue, wanted)
    assert list(bucket2.objects) == [RESULT]
