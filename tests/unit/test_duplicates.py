"""Duplicates in a job: found on each type's normalized value, marked by the splitter across batches, looked up once
and charged once by the worker."""

from __future__ import annotations

import dataclasses

import pytest

from functions.adapters.messaging import MAX_MESSAGE_BYTES
from functions.enrich.duplicates import key_of
from functions.logic import csv_input, processing, splitting
from functions.logic.duplicates import Duplicates, FirstSeen, JobValues
from functions.models import Batch, Job, JobStatus

LIMITS = splitting.SplitLimits(
    rows_per_batch=4,
    max_batch_bytes=200_000,
    max_rows=100_000,
    lease_seconds=60,
    max_message_bytes=MAX_MESSAGE_BYTES,
)


@pytest.mark.parametrize(
    ("job_type", "same", "other"),
    [
        ("email", ["ada@example.com", " ADA@Example.COM ", "Ada Lovelace <ada@example.com>"], "ada2@example.com"),
        ("phone", ["+49 30 7654321", "+49307654321", "0049 30 7654321"], "+49 30 7654322"),
        ("domain", ["acme.co.uk", "https://www.ACME.co.uk/about", "shop.acme.co.uk."], "acme.com"),
        ("ip", ["2001:db8::1", "2001:0DB8:0:0::0001", "[2001:db8::1]:443"], "2001:db8::2"),
        ("company", ["Acme  GmbH", "acme gmbh", " ACME GMBH"], "Acme AG"),
    ],
)
def test_values_that_normalize_alike_share_a_key_and_others_do_not(job_type: str, same: list[str], other: str) -> None:
    keys = {key_of(job_type, value, "DE") for value in same}
    assert len({k[0] for k in keys if k}) == 1 and None not in keys
    assert key_of(job_type, other, "DE") not in keys


def test_a_phone_is_normalized_in_its_region_and_an_invalid_value_has_no_key() -> None:
    assert key_of("phone", "030 7654321", "DE") == ("+49307654321", "+49307654321")
    assert key_of("phone", "030 7654321", "US") is None  # not a valid US number: invalid, free anyway
    assert key_of("email", "not an email") is None and key_of("ip", "300.1.1.1") is None


def test_the_table_remembers_first_rows_past_its_expected_size_in_a_few_bytes_a_value() -> None:
    table = Duplicates(expected=10)
    for i in range(5000):
        assert table.see(f"v{i}", i, f"value {i}") is None
    assert table.see("v1234", 9000, "again") == FirstSeen(1234, "value 1234")
    assert (table.distinct, table.duplicates) == (5000, 1)
    assert table.nbytes() < 5000 * 64  # a Python dict of int keys and values takes about 100 bytes a value


def mark(data: bytes, job_type: str = "email", **kwargs: object) -> list[Batch]:
    layout = csv_input.sniff(data[: csv_input.SNIFF_BYTES], job_type)
    values = JobValues(job_type, layout.header, layout.column_index, expected=100, **kwargs)  # type: ignore[arg-type]
    rows = csv_input.iter_rows([data], layout)
    return [m.batch for m in splitting.batches(rows, "job_x", layout, LIMITS, values)]


def test_the_splitter_marks_repeats_across_batches_carrying_the_value_only_when_the_first_is_in_another() -> None:
    # Given 10 rows in batches of 4, where rows 3 and 9 repeat row 1 and row 6 repeats row 5
    emails = ["a@x.com", "b@x.com", "A@X.COM", "c@x.com", "d@x.com", "D@x.com", "e@x.com", "f@x.com", "a@x.com", "g"]
    batches = mark(("email\r\n" + "\r\n".join(emails) + "\r\n").encode())
    # Then each batch lists its repeats by 0-based row with the first occurrence's row
    assert [b.duplicates for b in batches] == [
        [(2, 0, None)],  # in the same batch: the worker copies it
        [(5, 4, None)],
        [(8, 0, "a@x.com")],  # in an earlier batch: the first occurrence's value, to enrich once
    ]


def test_phone_repeats_are_found_in_each_rows_own_country() -> None:
    data = b"Telefon;Land\r\n030 7654321;DE\r\n+49 30 7654321;\r\n030 7654321;FR\r\n"
    batches = mark(data, "phone", country=None, default_region="US")
    assert batches[0].duplicates == [(1, 0, None)]


@dataclasses.dataclass
class Store:
    job: Job

    def get_job(self, job_id: str) -> Job | None:
        return self.job


def test_the_worker_copies_a_repeat_gives_it_duplicate_of_and_charges_only_first_occurrences() -> None:
    # Given a batch (rows 4-7 of a job) where row 6 repeats row 5 and row 7 repeats row 1 of an earlier batch
    job = Job(id="job_x", account_id="a", type="email", status=JobStatus.PROCESSING, source_key="k", created_at="t")
    batch = Batch(
        job_id="job_x",
        batch=1,
        first_row=4,
        column_index=0,
        header=["email"],
        rows=[["zed@example.com"], ["Ada Lovelace <ADA@example.com>"], ["ada@example.com"], ["ADA@EXAMPLE.COM"]],
        duplicates=[(6, 5, None), (7, 0, "ada@example.com")],
    )
    # When it is enriched
    results = processing.enrich_batch(job, batch, processing.OFFLINE)
    # Then every row has a result in order; repeats have the first occurrence's enrichment (the name its display
    # name gave, which the repeat's own value does not have) and its row number
    assert [r.duplicate_of for r in results] == [None, None, 6, 1]
    assert results[2].data == results[1].data and results[2].data["first_name"] == "Ada"
    assert results[3].data["normalized"] == "ada@example.com" and {r.status for r in results} == {"ok"}
    # And only the rows that are not repeats are charged
    counts = processing.count(results)
    assert (counts.processed, counts.succeeded, counts.credits, counts.duplicates) == (4, 4, 2, 2)
